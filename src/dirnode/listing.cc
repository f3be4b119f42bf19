// Tahoe's t=json presentation of directories and their children (see the
// header). Pure functions: any thread.
#include "cairn/dirnode/listing.h"

#include <cjson/cJSON.h>

namespace cairn::dirnode {
namespace {

void AddCapProps(cJSON* props, const caps::Cap& cap, const std::string& rw, const std::string& ro) {
  if (!rw.empty()) cJSON_AddStringToObject(props, "rw_uri", rw.c_str());
  cJSON_AddStringToObject(props, "ro_uri", ro.c_str());
  auto verify = caps::ToVerifyCap(cap);
  if (verify.ok()) cJSON_AddStringToObject(props, "verify_uri", caps::FormatCap(*verify).c_str());
}

// [TYPE, PROPS] of a node whose caps are `rw` (may be empty) and `ro`.
Json Node(const std::string& rw, const std::string& ro, const PyJson* metadata, bool immutable_dir) {
  Json out = Json::NewArray();
  cJSON* props = cJSON_CreateObject();
  auto cap = caps::ParseCap(!rw.empty() ? rw : ro);
  bool known = cap.ok() && cap->kind != caps::CapKind::kChkVerifier && cap->kind != caps::CapKind::kMutableVerifier;
  if (!known) {
    cJSON_AddItemToArray(out.get(), cJSON_CreateString("unknown"));
    if (metadata) cJSON_AddItemToObject(props, "metadata", ToCjson(*metadata));
    if (!rw.empty()) cJSON_AddStringToObject(props, "rw_uri", rw.c_str());
    Child c;
    c.ro_uri = ro;
    cJSON_AddStringToObject(props, "ro_uri", PresentedRoUri(c, immutable_dir).c_str());
    cJSON_AddItemToArray(out.get(), props);
    return out;
  }
  std::string ro_text = ro;
  if (ro_text.empty()) {
    auto r = caps::ToReadCap(*cap);
    if (r.ok()) ro_text = caps::FormatCap(*r);
  }
  cJSON_AddItemToArray(out.get(), cJSON_CreateString(cap->directory ? "dirnode" : "filenode"));
  cJSON_AddBoolToObject(props, "mutable", cap->is_mutable());
  if (!cap->directory) {
    const char* format = !cap->is_mutable() ? "CHK" : cap->format == caps::MutableFormat::kMdmf ? "MDMF" : "SDMF";
    cJSON_AddStringToObject(props, "format", format);
    if (cap->kind == caps::CapKind::kChk) cJSON_AddNumberToObject(props, "size", static_cast<double>(cap->size));
    if (cap->kind == caps::CapKind::kLiteral) {
      cJSON_AddNumberToObject(props, "size", static_cast<double>(cap->literal.size()));
    }
  }
  if (metadata) cJSON_AddItemToObject(props, "metadata", ToCjson(*metadata));
  AddCapProps(props, *cap, rw, ro_text);
  cJSON_AddItemToArray(out.get(), props);
  return out;
}

}  // namespace

Json ChildJson(const Child& child, bool dir_writable, bool dir_immutable) {
  return Node(dir_writable ? child.rw_uri : std::string(), child.ro_uri, &child.metadata, dir_immutable);
}

Json NodeJson(const std::string& cap_text) {
  auto cap = caps::ParseCap(cap_text);
  if (cap.ok() && cap->kind == caps::CapKind::kMutableWrite) return Node(cap_text, "", nullptr, false);
  return Node("", cap_text, nullptr, false);
}

namespace {

// The listing of `dircap` whose children `add` fills in (given the
// "children" object and whether the directory is writable and immutable).
template <typename AddChildren>
Json Listing(const caps::Cap& dircap, AddChildren&& add) {
  auto access = AccessOf(dircap);
  const bool writable = access.ok() && !access->writekey.empty();
  const bool immutable = access.ok() && access->immutable;
  Json out = Json::NewArray();
  cJSON_AddItemToArray(out.get(), cJSON_CreateString("dirnode"));
  cJSON* props = cJSON_CreateObject();
  cJSON* kids = cJSON_AddObjectToObject(props, "children");
  add(kids, writable, immutable);
  auto ro = caps::ToReadCap(dircap);
  if (ro.ok()) cJSON_AddStringToObject(props, "ro_uri", caps::FormatCap(*ro).c_str());
  if (writable) cJSON_AddStringToObject(props, "rw_uri", caps::FormatCap(dircap).c_str());
  auto verify = caps::ToVerifyCap(dircap);
  if (verify.ok()) cJSON_AddStringToObject(props, "verify_uri", caps::FormatCap(*verify).c_str());
  cJSON_AddBoolToObject(props, "mutable", dircap.is_mutable());
  cJSON_AddItemToArray(out.get(), props);
  return out;
}

}  // namespace

Json ListingJson(const caps::Cap& dircap, const Children& children) {
  return Listing(dircap, [&children](cJSON* kids, bool writable, bool immutable) {
    for (const auto& [name, child] : children) {
      cJSON_AddItemToObject(kids, name.c_str(), ChildJson(child, writable, immutable).release());
    }
  });
}

Json ListingJson(const caps::Cap& dircap, Children&& children) {
  return Listing(dircap, [&children](cJSON* kids, bool writable, bool immutable) {
    while (!children.empty()) {
      auto first = children.begin();
      cJSON_AddItemToObject(kids, first->first.c_str(), ChildJson(first->second, writable, immutable).release());
      children.erase(first);
    }
  });
}

}  // namespace cairn::dirnode
