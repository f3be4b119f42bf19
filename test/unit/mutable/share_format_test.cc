// The share-format interface (share_format.h): SDMF built, parsed, verified
// and decoded through it with the same bytes as the SDMF code itself; the
// header and its ranges as tahoe-protocol.md 3.6 and 3.7 give them; short,
// garbled and foreign headers refused with InvalidArgument; MDMF through the
// same interface, with more than one segment.
#include "cairn/mutable/share_format.h"

#include <gtest/gtest.h>

#include <cjson/cJSON.h>

#include "cairn/caps/keys.h"
#include "cairn/core/endian.h"
#include "cairn/crypto/rsa.h"
#include "cairn/mutable/mdmf.h"
#include "cairn/mutable/sdmf.h"
#include "support/vectors.h"
#include "unit/mutable/vector_key.h"

namespace cairn::mutable_files {
namespace {

std::string Text(std::size_t size) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i) s[i] = static_cast<char>(i * 7 + 3);
  return s;
}

// Builds every share of a version the way publish does: encoder, hashes in
// two ranges, seal, sign, lay out in two ranges, signature set.
std::vector<std::string> Build(const ShareFormat& format, std::string_view plaintext, std::uint32_t k,
                               std::uint32_t n, std::uint64_t seqnum, std::string iv) {
  const VectorKey& f = F();
  auto enc = format.NewEncoder(EncodeParams{f.keys.readkey, f.pub, f.encpriv, plaintext, k, n, seqnum, std::move(iv)});
  EXPECT_TRUE(enc.ok()) << enc.status().ToString();
  if (!enc.ok()) return {};
  ShareEncoder& e = **enc;
  EXPECT_EQ(e.n(), n);
  e.HashBlocks(0, n / 2);
  e.HashBlocks(n / 2, n);
  e.Seal();
  EXPECT_EQ(e.signed_prefix().size(), format.signed_prefix_size());
  auto sig = f.key.Sign(e.signed_prefix());
  EXPECT_TRUE(sig.ok());
  std::vector<std::string> shares(n);
  e.LayOut(n / 2, n, &shares);
  e.LayOut(0, n / 2, &shares);
  for (std::string& s : shares) EXPECT_TRUE(e.SetSignature(s, *sig).ok());
  EXPECT_EQ(e.SetSignature(shares[0], sig->substr(1)).code(), Code::kInvalidArgument);
  return shares;
}

// Parses and verifies every share through `format`, then decodes from the
// first k and from the last k.
void ExpectRoundTrip(const ShareFormat& format, const std::vector<std::string>& raw, std::string_view plaintext,
                     std::uint32_t k) {
  std::vector<MutableShare> parsed;
  for (std::uint32_t i = 0; i < raw.size(); ++i) {
    auto s = format.ParseShare(raw[i]);
    ASSERT_TRUE(s.ok()) << i << ": " << s.status().ToString();
    Status st = format.VerifyShare(*s, i, F().keys.fingerprint);
    EXPECT_TRUE(st.ok()) << i << ": " << st.ToString();
    parsed.push_back(std::move(*s));
  }
  std::map<std::uint32_t, const MutableShare*> first, last;
  for (std::uint32_t i = 0; i < k; ++i) {
    first[i] = &parsed[i];
    const std::uint32_t j = static_cast<std::uint32_t>(raw.size()) - 1 - i;
    last[j] = &parsed[j];
  }
  for (const auto* view : {&first, &last}) {
    auto out = format.Decode(*view, F().keys.readkey);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_TRUE(*out == plaintext);
  }
  first.erase(first.begin());
  EXPECT_EQ(format.Decode(first, F().keys.readkey).status().code(), Code::kInvalidArgument);  // fewer than k
}

TEST(ShareFormat, FormatsByCapAndByVersionByte) {
  EXPECT_EQ(&FormatFor(caps::MutableFormat::kSdmf), &SdmfFormat());
  EXPECT_EQ(&FormatFor(caps::MutableFormat::kMdmf), &MdmfFormat());
  EXPECT_EQ(SdmfFormat().format(), caps::MutableFormat::kSdmf);
  EXPECT_EQ(MdmfFormat().format(), caps::MutableFormat::kMdmf);
  EXPECT_EQ(*FormatOfShare(std::string(1, '\0')), &SdmfFormat());
  EXPECT_EQ(*FormatOfShare(std::string(1, '\1')), &MdmfFormat());
  EXPECT_EQ(FormatOfShare(std::string(1, '\2')).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(FormatOfShare("").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(SdmfFormat().checkstring_size(), 57u);
  EXPECT_EQ(SdmfFormat().signed_prefix_size(), 75u);
  EXPECT_EQ(SdmfFormat().header_size(), 107u);
  EXPECT_EQ(MdmfFormat().checkstring_size(), 41u);
  EXPECT_EQ(MdmfFormat().signed_prefix_size(), 59u);
  EXPECT_EQ(MdmfFormat().header_size(), 123u);
}

TEST(ShareFormat, SeqnumOfCheckstring) {
  std::string cs(1, '\0');
  PutBe(cs, 0x0102030405060708ull, 8);
  cs += std::string(48, 'r');
  EXPECT_EQ(SeqnumOfCheckstring(cs), 0x0102030405060708ull);
  EXPECT_EQ(SeqnumOfCheckstring(cs.substr(0, 9)), 0x0102030405060708ull);
  EXPECT_EQ(SeqnumOfCheckstring(cs.substr(0, 3)), 0x0102u);  // a short one gives what it has
  EXPECT_EQ(SeqnumOfCheckstring(""), 0u);
}

// The interface builds the very bytes SdmfEncoding builds (same IV, same
// signature), and reads them back as ParseSdmfShare does.
TEST(ShareFormat, SdmfRoundTripThroughTheInterface) {
  const std::string plaintext = Text(5000);
  const std::string iv(16, '\x42');
  std::vector<std::string> raw = Build(SdmfFormat(), plaintext, 3, 10, 7, iv);
  ASSERT_EQ(raw.size(), 10u);
  const VectorKey& f = F();
  auto direct = SdmfEncoding::Encode(f.keys.readkey, f.pub, f.encpriv, plaintext, 3, 10, 7, iv);
  ASSERT_TRUE(direct.ok());
  // RSA-PSS signatures are salted: both get the interface's signature.
  auto header = SdmfFormat().ParseHeader(raw[0]);
  ASSERT_TRUE(header.ok());
  const std::string signature = raw[0].substr(header->signature.offset, header->signature.length);
  auto direct_shares = direct->Shares(signature);
  ASSERT_TRUE(direct_shares.ok());
  EXPECT_TRUE(*direct_shares == raw) << "the interface built other bytes";
  ASSERT_NO_FATAL_FAILURE(ExpectRoundTrip(SdmfFormat(), raw, plaintext, 3));

  auto old = ParseSdmfShare(raw[4]);
  auto via = SdmfFormat().ParseShare(raw[4]);
  ASSERT_TRUE(old.ok() && via.ok());
  EXPECT_EQ(via->verification_key, old->pubkey);
  EXPECT_EQ(via->signature, old->signature);
  EXPECT_EQ(via->share_hash_chain, old->share_hash_chain);
  EXPECT_EQ(via->block_hash_tree, std::vector<std::string>{old->block_hash});
  EXPECT_EQ(via->blocks, std::vector<std::string>{old->block});
  EXPECT_TRUE(via->salts.empty());
  EXPECT_EQ(via->encprivkey, old->encprivkey);
  EXPECT_EQ(via->header.signed_prefix, old->signed_prefix);
  // Empty and one-byte files.
  for (std::size_t size : {0, 1}) {
    std::vector<std::string> small = Build(SdmfFormat(), Text(size), 2, 3, 1, std::string());
    ASSERT_NO_FATAL_FAILURE(ExpectRoundTrip(SdmfFormat(), small, Text(size), 2));
  }
  // A flipped block byte is caught by the verification.
  std::string bad = raw[2];
  bad[static_cast<std::size_t>(GetBe(bad, 87, 4))] ^= 1;
  auto parsed = SdmfFormat().ParseShare(bad);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(SdmfFormat().VerifyShare(*parsed, 2, f.keys.fingerprint).code(), Code::kIntegrity);
  EXPECT_EQ(SdmfFormat().VerifyShare(*SdmfFormat().ParseShare(raw[2]), 3, f.keys.fingerprint).code(),
            Code::kIntegrity);  // another share's number
}

TEST(ShareFormat, SdmfHeaderAndItsRanges) {
  const std::string plaintext = Text(20);
  std::vector<std::string> raw = Build(SdmfFormat(), plaintext, 3, 10, 9, std::string(16, 'v'));
  const std::string& share = raw[4];
  // The header parses from its first 107 bytes alone.
  auto h = SdmfFormat().ParseHeader(std::string_view(share).substr(0, 107));
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->format, caps::MutableFormat::kSdmf);
  EXPECT_EQ(h->seqnum, 9u);
  EXPECT_EQ(h->iv, std::string(16, 'v'));
  EXPECT_EQ(h->root_hash, share.substr(9, 32));
  EXPECT_EQ(h->k, 3u);
  EXPECT_EQ(h->n, 10u);
  EXPECT_EQ(h->segment_size, 21u);
  EXPECT_EQ(h->data_length, 20u);
  EXPECT_EQ(h->num_segments, 1u);
  EXPECT_EQ(h->checkstring, share.substr(0, 57));
  EXPECT_EQ(h->signed_prefix, share.substr(0, 75));
  EXPECT_EQ(h->verification_key.offset, 107u);
  EXPECT_EQ(h->verification_key.length, 294u);
  EXPECT_EQ(h->signature.offset, 401u);
  EXPECT_EQ(h->signature.length, 256u);
  EXPECT_EQ(h->share_hash_chain.offset, 657u);
  EXPECT_EQ(h->share_hash_chain.length, 4u * 34);
  EXPECT_EQ(h->block_hash_tree.length, 32u);
  EXPECT_EQ(h->share_data.offset, h->block_hash_tree.end());
  EXPECT_EQ(h->share_data.length, 7u);
  EXPECT_EQ(h->encprivkey.offset, h->share_data.end());
  EXPECT_EQ(h->encprivkey.end(), h->eof);
  EXPECT_EQ(h->eof, share.size());
  EXPECT_EQ(share.substr(h->encprivkey.offset), F().encpriv);
  // The legacy header entry point is the same parser.
  auto same = ParseSdmfHeader(share);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->signed_prefix, h->signed_prefix);
  EXPECT_EQ(same->eof, h->eof);
}

// Writes a big-endian field of `bytes` bytes at `at`.
std::string With(std::string share, std::size_t at, std::uint64_t v, std::size_t bytes) {
  std::string field;
  PutBe(field, v, bytes);
  share.replace(at, bytes, field);
  return share;
}

TEST(ShareFormat, SdmfShortAndGarbledHeadersAreRefused) {
  std::vector<std::string> raw = Build(SdmfFormat(), Text(100), 2, 4, 1, std::string());
  const std::string& good = raw[1];
  const ShareFormat& f = SdmfFormat();
  auto code = [&](std::string_view bytes) { return f.ParseHeader(bytes).status().code(); };
  for (std::size_t len : {0, 1, 9, 57, 75, 106}) {
    EXPECT_EQ(code(std::string_view(good).substr(0, len)), Code::kInvalidArgument) << len;
    EXPECT_EQ(f.ParseShare(std::string_view(good).substr(0, len)).status().code(), Code::kInvalidArgument) << len;
  }
  EXPECT_EQ(code(std::string(1, '\1') + good.substr(1)), Code::kInvalidArgument);  // MDMF's version byte
  EXPECT_EQ(code(std::string(1, '\7') + good.substr(1)), Code::kInvalidArgument);
  EXPECT_EQ(code(With(good, 57, 0, 1)), Code::kInvalidArgument);   // k = 0
  EXPECT_EQ(code(With(good, 58, 1, 1)), Code::kInvalidArgument);   // N < k
  EXPECT_EQ(code(With(good, 75, 100, 4)), Code::kInvalidArgument);  // signature inside the header
  const std::uint64_t o_sig = GetBe(good, 75, 4), o_chain = GetBe(good, 79, 4), o_encpriv = GetBe(good, 91, 8);
  EXPECT_EQ(code(With(good, 79, o_sig + 255, 4)), Code::kInvalidArgument);  // chain not 256 after the signature
  EXPECT_EQ(code(With(good, 83, GetBe(good, 83, 4) + 1, 4)), Code::kInvalidArgument);  // ragged chain
  EXPECT_EQ(code(With(good, 99, o_encpriv - 1, 8)), Code::kInvalidArgument);           // EOF before the key
  EXPECT_EQ(code(With(good, 91, ~0ull, 8)), Code::kInvalidArgument);                   // key past EOF
  EXPECT_TRUE(f.ParseHeader(good.substr(0, o_chain)).ok());  // a header needs no more than itself
  // A whole share must reach its EOF offset.
  EXPECT_TRUE(f.ParseShare(good).ok());
  EXPECT_EQ(f.ParseShare(good.substr(0, good.size() - 1)).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseSdmfShare(good.substr(0, good.size() - 1)).status().code(), Code::kInvalidArgument);
  // An SDMF share is not an MDMF one.
  EXPECT_EQ(MdmfFormat().ParseHeader(good).status().code(), Code::kInvalidArgument);
}

TEST(ShareFormat, MdmfHeaderAndRoundTripThroughTheInterface) {
  const std::uint32_t k = 3, n = 5;
  const std::string plaintext = Text(2 * 131073 + 1000);  // three segments, the last short
  std::vector<std::string> raw = Build(MdmfFormat(), plaintext, k, n, 4, std::string());
  ASSERT_EQ(raw.size(), n);
  auto h = MdmfFormat().ParseHeader(std::string_view(raw[2]).substr(0, 123));
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->format, caps::MutableFormat::kMdmf);
  EXPECT_EQ(h->seqnum, 4u);
  EXPECT_TRUE(h->iv.empty());
  EXPECT_EQ(h->k, k);
  EXPECT_EQ(h->n, n);
  EXPECT_EQ(h->segment_size, 131073u);
  EXPECT_EQ(h->data_length, plaintext.size());
  EXPECT_EQ(h->num_segments, 3u);
  EXPECT_EQ(h->checkstring, raw[2].substr(0, 41));
  EXPECT_EQ(h->signed_prefix, raw[2].substr(0, 59));
  EXPECT_EQ(h->encprivkey.offset, 123u);
  EXPECT_EQ(h->encprivkey.end(), h->share_hash_chain.offset);
  EXPECT_EQ(h->share_hash_chain.end(), h->signature.offset);
  EXPECT_EQ(h->signature.length, 256u);
  EXPECT_EQ(h->verification_key.offset, h->signature.end());
  EXPECT_EQ(h->verification_key.length, 294u);
  EXPECT_EQ(h->share_data.offset, 2167u);
  EXPECT_EQ(h->block_hash_tree.length, 32u * 7);  // P = 4 leaves
  EXPECT_EQ(h->eof, raw[2].size());
  auto parsed = MdmfFormat().ParseShare(raw[2]);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->blocks.size(), 3u);
  EXPECT_EQ(parsed->salts.size(), 3u);
  EXPECT_EQ(parsed->blocks[2].size(), (1000u + k - 1) / k);
  EXPECT_EQ(parsed->verification_key, F().pub);
  EXPECT_EQ(parsed->encprivkey, F().encpriv);
  ASSERT_NO_FATAL_FAILURE(ExpectRoundTrip(MdmfFormat(), raw, plaintext, k));
  // The interface reads what MdmfEncoding builds directly, too.
  auto direct = MdmfEncoding::Encode(F().keys.readkey, F().pub, F().encpriv, "mdmf", 1, 2, 1);
  ASSERT_TRUE(direct.ok());
  auto direct_shares = direct->Shares(*F().key.Sign(direct->signed_prefix()));
  ASSERT_TRUE(direct_shares.ok());
  ASSERT_NO_FATAL_FAILURE(ExpectRoundTrip(MdmfFormat(), *direct_shares, "mdmf", 1));
}

TEST(ShareFormat, MdmfShortAndGarbledHeadersAreRefused) {
  std::vector<std::string> raw = Build(MdmfFormat(), Text(10), 1, 2, 1, std::string());
  const std::string& good = raw[0];
  const ShareFormat& f = MdmfFormat();
  auto code = [&](std::string_view bytes) { return f.ParseHeader(bytes).status().code(); };
  EXPECT_TRUE(f.ParseHeader(good).ok());
  for (std::size_t len : {0, 1, 41, 59, 122}) EXPECT_EQ(code(good.substr(0, len)), Code::kInvalidArgument) << len;
  EXPECT_EQ(code(std::string(1, '\0') + good.substr(1)), Code::kInvalidArgument);  // SDMF's version byte
  EXPECT_EQ(code(With(good, 41, 0, 1)), Code::kInvalidArgument);                   // k = 0
  EXPECT_EQ(code(With(good, 43, 131071, 8)), Code::kInvalidArgument);              // segment size not k's
  EXPECT_EQ(code(With(good, 59, 124, 8)), Code::kInvalidArgument);                 // private key not at 123
  EXPECT_EQ(code(With(good, 59 + 7 * 8, 0, 8)), Code::kInvalidArgument);           // EOF before the tree
  EXPECT_EQ(f.ParseShare(good.substr(0, good.size() - 1)).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(SdmfFormat().ParseHeader(good).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace cairn::mutable_files
