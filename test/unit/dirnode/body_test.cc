// Directory bodies against the vectors Tahoe-LAFS made (test/vectors/dirs):
// every one parses, decrypts, lists as Tahoe's t=json did, and packs back to
// Tahoe's exact bytes from its parsed values; a read cap sees no write cap.
#include <gtest/gtest.h>
#include <cjson/cJSON.h>

#include <string>
#include <vector>

#include "cairn/caps/cap.h"
#include "cairn/core/base32.h"
#include "cairn/dirnode/dirnode.h"
#include "cairn/dirnode/listing.h"
#include "support/vectors.h"

namespace cairn::dirnode {
namespace {

using testing::Base64Decode;
using testing::LoadVectors;

const char* const kVectorFiles[] = {
    "sdmf-dir.json",          "mdmf-dir.json",
    "edge-names-dir.json",    "chk-dir-mkdir-immutable.json",
    "lit-dir-one-child.json", "lit-dir-unknown-child.json",
    "lit-dir-empty.json",     "backup-snapshot-run1-root.json",
    "backup-snapshot-run1-docs.json", "backup-snapshot-run1-docs-deep.json",
};

std::string StrOrEmpty(const cJSON* o, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : "";
}

// A cJSON tree printed and read back, as a client of the listing sees it.
Json Reparsed(const Json& tree) {
  char* text = cJSON_PrintUnformatted(tree.get());
  Json back(cJSON_Parse(text));
  cJSON_free(text);
  return back;
}

// Does any child of a listing show a write cap?
bool ShowsRwUri(const cJSON* listing) {
  const cJSON* kids = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(listing, 1), "children");
  const cJSON* kid;
  cJSON_ArrayForEach(kid, kids) {
    if (cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(kid, 1), "rw_uri")) return true;
  }
  return false;
}

class DirVector : public ::testing::TestWithParam<const char*> {};

TEST_P(DirVector, ParsesListsAndPacksToTahoesBytes) {
  Json v = LoadVectors(std::string("dirs/") + GetParam());
  const cJSON* root = v.get();
  const std::string body = Base64Decode(StrOrEmpty(root, "body_b64"));
  ASSERT_EQ(body.size(), testing::Num(root, "body_len"));
  const std::string writecap = StrOrEmpty(root, "dir_writecap");
  const std::string readcap = StrOrEmpty(root, "dir_readcap");
  const std::string best = writecap.empty() ? readcap : writecap;

  auto cap = caps::ParseCap(best);
  ASSERT_TRUE(cap.ok()) << cap.status().ToString();
  ASSERT_TRUE(cap->directory);
  EXPECT_EQ(caps::FormatCap(*cap), best);
  auto ro = caps::ToReadCap(*cap);
  ASSERT_TRUE(ro.ok());
  EXPECT_EQ(caps::FormatCap(*ro), readcap);
  auto verify = caps::ToVerifyCap(*cap);
  EXPECT_EQ(verify.ok() ? caps::FormatCap(*verify) : "", StrOrEmpty(root, "dir_verifycap"));
  // The file behind the directory: the same cap under its file prefix.
  caps::Cap file = *cap;
  file.directory = false;
  EXPECT_EQ(caps::FormatCap(file), StrOrEmpty(root, "underlying_filecap"));
  if (cap->kind == caps::CapKind::kLiteral) {
    EXPECT_EQ(cap->literal, body);
  }
  if (cap->kind != caps::CapKind::kLiteral) {
    auto si = caps::StorageIndexOf(*cap);
    ASSERT_TRUE(si.ok());
    EXPECT_EQ(Base32Encode(*si), StrOrEmpty(root, "dir_storage_index"));
  }

  auto access = AccessOf(*cap);
  ASSERT_TRUE(access.ok());
  auto parsed = ParseBody(body, *access);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->dropped, 0u);

  // The listing is Tahoe's t=json.
  Json listing = Reparsed(ListingJson(*cap, parsed->children));
  const cJSON* want = cJSON_GetObjectItemCaseSensitive(root, "web_tjson");
  EXPECT_TRUE(cJSON_Compare(listing.get(), want, true))
      << "ours:   " << listing.Print() << "\nTahoe's: " << Json(cJSON_Duplicate(want, true)).Print();

  // Children and metadata as expected_children says.
  const cJSON* expected = cJSON_GetObjectItemCaseSensitive(root, "expected_children");
  EXPECT_EQ(static_cast<std::size_t>(cJSON_GetArraySize(expected)), parsed->children.size());
  const cJSON* e;
  cJSON_ArrayForEach(e, expected) {
    auto it = parsed->children.find(e->string);
    ASSERT_NE(it, parsed->children.end()) << e->string;
    EXPECT_EQ(PresentedRoUri(it->second, access->immutable), StrOrEmpty(e, "ro_uri"));
    EXPECT_EQ(it->second.rw_uri, StrOrEmpty(e, "rw_uri")) << e->string;
    Json md = Reparsed(Json(ToCjson(it->second.metadata)));
    EXPECT_TRUE(cJSON_Compare(md.get(), cJSON_GetObjectItemCaseSensitive(e, "metadata"), true)) << e->string;
    const std::string type = StrOrEmpty(e, "type");
    NodeType t = TypeOf(it->second);
    EXPECT_EQ(type, t == NodeType::kFile ? "filenode" : t == NodeType::kDirectory ? "dirnode" : "unknown");
  }

  // Packed from the parsed values alone (every entry rebuilt: names,
  // slots re-encrypted, metadata re-serialized): Tahoe's exact bytes.
  Children rebuilt = parsed->children;
  for (auto& [name, child] : rebuilt) child.packed.clear();
  auto packed = PackBody(rebuilt, *access);
  ASSERT_TRUE(packed.ok()) << packed.status().ToString();
  EXPECT_EQ(*packed, body);
  // And with the entries' own bytes kept.
  auto kept = PackBody(parsed->children, *access);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(*kept, body);

  // Through the read cap: no write cap anywhere (transitive read-only).
  auto ro_access = AccessOf(*ro);
  ASSERT_TRUE(ro_access.ok());
  EXPECT_TRUE(ro_access->writekey.empty());
  auto ro_parsed = ParseBody(body, *ro_access);
  ASSERT_TRUE(ro_parsed.ok());
  for (const auto& [name, child] : ro_parsed->children) EXPECT_EQ(child.rw_uri, "") << name;
  Json ro_listing = ListingJson(*ro, ro_parsed->children);
  EXPECT_FALSE(ShowsRwUri(ro_listing.get()));
  EXPECT_EQ(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(ro_listing.get(), 1), "rw_uri"), nullptr);
  // A read-only directory cannot be written.
  if (!access->immutable && !ro_parsed->children.empty()) {
    Children changed = ro_parsed->children;
    changed.begin()->second.packed.clear();
    EXPECT_EQ(PackBody(changed, *ro_access).status().code(), Code::kInvalidArgument);
  }
}

INSTANTIATE_TEST_SUITE_P(Tahoe, DirVector, ::testing::ValuesIn(kVectorFiles));

// tahoe-dirnodes.md A.5's worked example: the rw slot of mut.txt in
// sdmf-dir.json, and the constant salt of a child without a write cap.
TEST(DirRwSlot, WorkedExampleAndConstantSalt) {
  const std::string wk = testing::Unhex("f80d22732a834b0f9187889293017efb");
  const std::string rw = "URI:SSK:cobyrb2r2bn64bqudztnxprowy:gavtmxqico67fh533fs6drzjardjb3b74vr2avqir5i3eug3eyza";
  std::string slot = EncryptRwCap(wk, rw);
  ASSERT_EQ(slot.size(), 48 + rw.size());
  EXPECT_EQ(testing::Hex(slot.substr(0, 16)), "51cff9061a8b116a2ddc99e32b68c9c8");
  EXPECT_EQ(testing::Hex(slot.substr(16, 8)), "04f1151111bd5db7");
  EXPECT_EQ(testing::Hex(slot.substr(slot.size() - 32, 4)), "929a8569");
  EXPECT_EQ(DecryptRwSlot(wk, slot), rw);
  std::string empty = EncryptRwCap(wk, "");
  ASSERT_EQ(empty.size(), 48u);
  EXPECT_EQ(testing::Hex(empty.substr(0, 16)), "d05f738a043b8404b7495ccb5d550186");
  EXPECT_EQ(DecryptRwSlot(wk, empty), "");
  EXPECT_EQ(DecryptRwSlot(wk, "short"), "");
}

TEST(DirBody, EmptyBodyIsAnEmptyDirectory) {
  DirAccess rw;
  rw.writekey = std::string(16, 'k');
  auto parsed = ParseBody("", rw);
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->children.empty());
  EXPECT_EQ(*PackBody({}, rw), "");
}

// Tahoe fails the whole listing on a bad netstring or non-object metadata,
// and refuses a non-empty rw slot in an immutable directory.
TEST(DirBody, RefusesWhatTahoeRefuses) {
  DirAccess imm;
  imm.immutable = true;
  DirAccess rw;
  rw.writekey = std::string(16, 'k');
  const std::string bad[] = {
      "5:abc,",                              // overruns
      "3:abc;",                              // no ','
      "03:abc,",                             // leading zero
      "x:abc,",                              // not decimal
      "15:1:a,0:,0:,2:[],,",                 // metadata not an object
      "14:1:a,0:,0:,1:{,,",                  // metadata not JSON
      "10:1:a,0:,0:,,",                      // three slots
      "21:1:a,0:,0:,8:{\"\x97\": 1},,",          // metadata not UTF-8 (found by the fuzzer)
  };
  for (const std::string& b : bad) EXPECT_EQ(ParseBody(b, rw).status().code(), Code::kIntegrity) << b;
  EXPECT_EQ(ParseBody("18:1:a,0:,3:xyz,2:{},,", imm).status().code(), Code::kIntegrity);
  EXPECT_TRUE(ParseBody("15:1:a,0:,0:,2:{},,", imm).ok());
}

// A hand-made body, out of order, with a ro cap padded by spaces and an
// empty rw slot in a mutable dir: accepted, and after a change to another
// child the odd entries come back byte-identical, sorted (A.2).
TEST(DirBody, KeepsUntouchedEntriesBytesAndSorts) {
  DirAccess rw;
  rw.writekey = std::string(16, 'k');
  const std::string b_entry = "42:1:b,26:URI:LIT:mrswk4ak          ,0:,2:{},,";
  const std::string a_entry = "32:1:a,16:URI:LIT:mrswk4ak,0:,2:{},,";
  auto parsed = ParseBody(b_entry + a_entry, rw);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->children.size(), 2u);
  EXPECT_EQ(parsed->children["b"].ro_uri, "URI:LIT:mrswk4ak");
  Children c = parsed->children;
  ASSERT_TRUE(SetChild(c, "c", "", "URI:LIT:mrswk4ak", nullptr, false, false, 5.0).ok());
  auto packed = PackBody(c, rw);
  ASSERT_TRUE(packed.ok());
  EXPECT_EQ(packed->substr(0, a_entry.size() + b_entry.size()), a_entry + b_entry);
  auto again = ParseBody(*packed, rw);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->children.size(), 3u);
}

// Names are NFC when read: a stored NFD name lists as NFC, and two names
// with one NFC form leave the later entry.
TEST(DirBody, NamesReadAsNfc) {
  DirAccess imm;
  imm.immutable = true;
  const std::string nfd = "e\xcc\x81";  // e + COMBINING ACUTE ACCENT
  const std::string body = "28:3:" + nfd + ",10:URI:LIT:me,0:,2:{},," + "27:2:\xc3\xa9,10:URI:LIT:mi,0:,2:{},,";
  auto parsed = ParseBody(body, imm);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->children.size(), 1u);
  EXPECT_EQ(parsed->children.begin()->first, "\xc3\xa9");
  EXPECT_EQ(parsed->children.begin()->second.ro_uri, "URI:LIT:mi");
}

// A mutable cap in an immutable directory is dropped, as Tahoe does.
TEST(DirBody, ImmutableDirDropsMutableChildren) {
  DirAccess imm;
  imm.immutable = true;
  const std::string ssk_ro = "URI:SSK-RO:457urexl7na6utoseiogny2w7a:gavtmxqico67fh533fs6drzjardjb3b74vr2avqir5i3eug3eyza";
  std::string inner = "1:m," + std::to_string(ssk_ro.size()) + ":" + ssk_ro + ",0:,2:{},";
  std::string body = std::to_string(inner.size()) + ":" + inner + ",";
  auto parsed = ParseBody(body, imm);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->dropped, 1u);
  EXPECT_TRUE(parsed->children.empty());
  Children c;
  ASSERT_TRUE(SetChild(c, "m", "", ssk_ro, nullptr, false, false, 1.0).ok());
  EXPECT_EQ(PackBody(c, imm).status().code(), Code::kInvalidArgument);
}

// update_metadata (A.6): user keys replaced or kept, "tahoe" last with the
// old linkcrtime (or the old ctime), linkmotime now; a client's "tahoe"
// ignored.
TEST(DirMetadata, UpdateMetadataAsTahoe) {
  PyJson fresh = UpdateMetadata(nullptr, nullptr, 10.5);
  EXPECT_EQ(DumpPyJson(fresh), "{\"tahoe\": {\"linkcrtime\": 10.5, \"linkmotime\": 10.5}}");
  auto old = ParsePyJson("{\"tahoe\": {\"linkcrtime\": 1.25, \"linkmotime\": 2.0}, \"k\": 1}");
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(DumpPyJson(UpdateMetadata(&*old, nullptr, 20.0)),
            "{\"k\": 1, \"tahoe\": {\"linkcrtime\": 1.25, \"linkmotime\": 20.0}}");
  auto given = ParsePyJson("{\"z\": \"\\u00fc\", \"tahoe\": {\"linkcrtime\": 5}}");
  ASSERT_TRUE(given.ok());
  EXPECT_EQ(DumpPyJson(UpdateMetadata(&*old, &*given, 30.0)),
            "{\"z\": \"\\u00fc\", \"tahoe\": {\"linkcrtime\": 1.25, \"linkmotime\": 30.0}}");
  auto backup = ParsePyJson("{\"ctime\": 7, \"mtime\": 8.5}");
  ASSERT_TRUE(backup.ok());
  EXPECT_EQ(DumpPyJson(UpdateMetadata(&*backup, nullptr, 9.0)),
            "{\"ctime\": 7, \"mtime\": 8.5, \"tahoe\": {\"linkcrtime\": 7, \"linkmotime\": 9.0}}");
}

TEST(DirChanges, SetAndDelete) {
  Children c;
  const std::string ssk = "URI:SSK:cobyrb2r2bn64bqudztnxprowy:gavtmxqico67fh533fs6drzjardjb3b74vr2avqir5i3eug3eyza";
  ASSERT_TRUE(SetChild(c, "m", ssk, "", nullptr, false, false, 1.0).ok());
  EXPECT_EQ(c["m"].rw_uri, ssk);
  EXPECT_EQ(c["m"].ro_uri, "URI:SSK-RO:457urexl7na6utoseiogny2w7a:gavtmxqico67fh533fs6drzjardjb3b74vr2avqir5i3eug3eyza");
  EXPECT_EQ(SetChild(c, "m", "", "URI:LIT:", nullptr, false, false, 2.0).code(), Code::kConflict);
  const std::string dir = "URI:DIR2:7agse4zkqnfq7emhrcjjgal67m:2v2dl4mqoqfxjjsslqo4gnojjtrzvylj3w7a7pxhvtoac4q4esca";
  ASSERT_TRUE(SetChild(c, "d", dir, "", nullptr, false, false, 1.0).ok());
  EXPECT_EQ(SetChild(c, "d", "", "URI:LIT:", nullptr, true, true, 2.0).code(), Code::kConflict);
  EXPECT_TRUE(SetChild(c, "m", "", "URI:LIT:", nullptr, true, true, 2.0).ok());
  EXPECT_EQ(c["m"].rw_uri, "");
  EXPECT_EQ(SetChild(c, "u", "x-future:rw", "", nullptr, false, false, 1.0).code(), Code::kInvalidArgument);
  EXPECT_TRUE(SetChild(c, "u", "x-future:rw", "x-future:ro", nullptr, false, false, 1.0).ok());
  EXPECT_TRUE(DeleteChild(c, "m").ok());
  EXPECT_EQ(DeleteChild(c, "m").code(), Code::kNotFound);
}

TEST(DirPresentation, UnknownCapsGetTheirPrefix) {
  Child c;
  c.ro_uri = "x-tahoe-crazy-future-cap:readonly";
  EXPECT_EQ(PresentedRoUri(c, false), "ro.x-tahoe-crazy-future-cap:readonly");
  EXPECT_EQ(PresentedRoUri(c, true), "imm.x-tahoe-crazy-future-cap:readonly");
  c.ro_uri = "imm.x-a";
  EXPECT_EQ(PresentedRoUri(c, false), "imm.x-a");
  c.ro_uri = "URI:LIT:mrswk4ak";
  EXPECT_EQ(PresentedRoUri(c, false), "URI:LIT:mrswk4ak");
  EXPECT_EQ(RoSlotOf("ro.x", false), "x");
  EXPECT_EQ(RoSlotOf("imm.x", false), "imm.x");
  EXPECT_EQ(RoSlotOf("imm.x", true), "x");
}

}  // namespace
}  // namespace cairn::dirnode
