// Tahoe-LAFS server entries, read on the CLI's side (cli/tahoe_servers.h).
// Pure functions: any thread.
#include "cli/tahoe_servers.h"

#include <cjson/cJSON.h>

#include "cli/yaml.h"

namespace cairn::cli {
namespace {

Json Copy(const cJSON* item) { return Json(cJSON_Duplicate(item, true)); }

bool IsAnn(const cJSON* o) {
  return cJSON_IsObject(o) && (cJSON_GetObjectItemCaseSensitive(o, "anonymous-storage-FURL") ||
                               cJSON_GetObjectItemCaseSensitive(o, "anonymous-storage-NURLs"));
}

// One servers.yaml entry {"ann": {...}} under key `id`.
Result<TahoeServerEntry> Entry(const std::string& id, const cJSON* entry) {
  const cJSON* ann = cJSON_GetObjectItemCaseSensitive(entry, "ann");
  if (!cJSON_IsObject(entry) || !cJSON_IsObject(ann)) {
    return Status::InvalidArgument("server \"" + id + "\" has no \"ann\" mapping (the server's announcement)");
  }
  const cJSON* furl = cJSON_GetObjectItemCaseSensitive(ann, "anonymous-storage-FURL");
  if (furl && !cJSON_IsString(furl))
    return Status::InvalidArgument("server \"" + id + "\": anonymous-storage-FURL is not a string");
  const cJSON* nurls = cJSON_GetObjectItemCaseSensitive(ann, "anonymous-storage-NURLs");
  if (nurls) {
    const cJSON* n;
    bool strings = cJSON_IsArray(nurls);
    cJSON_ArrayForEach(n, nurls) strings = strings && cJSON_IsString(n);
    if (!strings)
      return Status::InvalidArgument("server \"" + id + "\": anonymous-storage-NURLs is not a list of NURLs");
  }
  return TahoeServerEntry{id, Copy(ann)};
}

}  // namespace

Result<Json> ParseJsonOrYaml(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t')) ++i;
  if (i < text.size() && text[i] == '{') {
    auto json = Json::Parse(text);
    if (!json.ok()) return json.status().WithContext("reading JSON");
    return json;
  }
  auto yaml = ParseYamlSubset(text);
  if (!yaml.ok()) return yaml.status().WithContext("reading YAML");
  return yaml;
}

Result<TahoeServerEntry> OneServerEntry(std::string_view text) {
  CAIRN_TRY_ASSIGN(Json doc, ParseJsonOrYaml(text));
  const cJSON* root = doc.get();
  if (IsAnn(root)) return TahoeServerEntry{"", Copy(root)};
  if (cJSON_IsObject(root) && cJSON_GetObjectItemCaseSensitive(root, "ann")) {
    const cJSON* id = cJSON_GetObjectItemCaseSensitive(root, "server_id");
    return Entry(cJSON_IsString(id) ? id->valuestring : "", root);
  }
  if (cJSON_IsObject(root) && cJSON_GetObjectItemCaseSensitive(root, "storage")) {
    CAIRN_TRY_ASSIGN(ServersYaml all, ReadServersYaml(text));
    if (all.entries.size() == 1) return std::move(all.entries[0]);
    return Status::InvalidArgument("this servers.yaml holds " + std::to_string(all.entries.size()) +
                                   " servers with a NURL: use `cairn servers import`");
  }
  if (cJSON_IsObject(root) && cJSON_GetArraySize(root) == 1 && cJSON_IsObject(root->child)) {
    return Entry(root->child->string, root->child);
  }
  return Status::InvalidArgument(
      "not a Tahoe-LAFS server entry: expected the \"ann\" stanza (anonymous-storage-FURL, "
      "anonymous-storage-NURLs, ...), an entry \"SERVER-ID: {ann: ...}\" as `cairn tahoe-entry` prints it, or "
      "a servers.yaml with one server");
}

Result<ServersYaml> ReadServersYaml(std::string_view text) {
  CAIRN_TRY_ASSIGN(Json doc, ParseJsonOrYaml(text));
  const cJSON* storage = cJSON_GetObjectItemCaseSensitive(doc.get(), "storage");
  if (!cJSON_IsObject(doc.get()) || !cJSON_IsObject(storage)) {
    return Status::InvalidArgument("not a servers.yaml: it has no \"storage:\" mapping of servers");
  }
  ServersYaml out;
  const cJSON* e;
  cJSON_ArrayForEach(e, storage) {
    CAIRN_TRY_ASSIGN(TahoeServerEntry entry, Entry(e->string, e));
    const cJSON* nurls = cJSON_GetObjectItemCaseSensitive(entry.ann.get(), "anonymous-storage-NURLs");
    if (cJSON_GetArraySize(nurls) == 0) {
      out.skipped.emplace_back(
          entry.server_id, "no anonymous-storage-NURLs: it speaks only Foolscap, and cairn reaches servers over GBS");
      continue;
    }
    out.entries.push_back(std::move(entry));
  }
  return out;
}

}  // namespace cairn::cli
