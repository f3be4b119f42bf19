// Check results: the verdicts and Tahoe's JSON (include/cairn/grid/check.h).
// Pure values: any thread.
#include "cairn/grid/check.h"

#include <cjson/cJSON.h>

#include <algorithm>

#include "cairn/core/base32.h"
#include "cairn/grid/placement.h"

namespace cairn::grid {
namespace {

// The counts every check has: good shares, their hosts, happiness, and
// whether happiness is short of the configured value while enough servers
// answered to reach it.
void CountGood(CheckResults& r) {
  r.shares_good = r.good.size();
  std::map<std::string, std::size_t> index;
  SharePlacement placement;
  for (const auto& [sh, names] : r.good) {
    for (const std::string& name : names) {
      auto it = index.emplace(name, index.size()).first;
      placement[sh].insert(it->second);
    }
  }
  r.good_share_hosts = index.size();
  r.happiness = Happiness(placement);
  const std::size_t reachable = std::min<std::size_t>(r.servers_responding.size(), r.n);
  const std::size_t want = std::min<std::size_t>(r.happy, reachable);
  r.needs_rebalancing = r.recoverable && r.happiness < want;
}

std::string Encoding(const CheckResults& r) {
  return std::to_string(r.shares_good) + " shares (enc " + std::to_string(r.k) + "-of-" + std::to_string(r.n) + ")";
}

void AddCount(cJSON* o, const char* key, std::size_t v) { cJSON_AddNumberToObject(o, key, static_cast<double>(v)); }

cJSON* NameList(const std::set<std::string>& names) {
  cJSON* list = cJSON_CreateArray();
  for (const std::string& n : names) cJSON_AddItemToArray(list, cJSON_CreateString(n.c_str()));
  return list;
}

}  // namespace

std::string Base32Prefix(const std::string& raw, std::size_t chars) { return Base32Encode(raw).substr(0, chars); }

void CheckResults::FinishImmutable() {
  recoverable = good.size() >= k;
  recoverable_versions = recoverable ? 1 : 0;
  unrecoverable_versions = recoverable ? 0 : 1;
  CountGood(*this);
  healthy = shares_good >= n;
  summary = healthy ? "Healthy" : "Not Healthy: " + Encoding(*this);
}

void CheckResults::FinishMutable() {
  recoverable_versions = 0;
  unrecoverable_versions = 0;
  for (const VersionSeen& v : versions) (v.recoverable() ? recoverable_versions : unrecoverable_versions)++;
  recoverable = recoverable_versions > 0;
  CountGood(*this);
  healthy = unrecoverable_versions == 0 && recoverable_versions == 1 && shares_good >= n && corrupt.empty();
  if (healthy) {
    summary = "Healthy";
    return;
  }
  summary = "Unhealthy:";
  if (unrecoverable_versions > 0) summary += " some versions are unrecoverable";
  if (recoverable_versions == 0) summary += " no versions are recoverable";
  if (recoverable_versions > 1) summary += " multiple versions are recoverable";
  if (recoverable_versions > 0) summary += " " + Encoding(*this);
  if (!corrupt.empty()) {
    summary += " Corrupt Shares:";
    for (const CorruptShare& c : corrupt) summary += " " + c.server + "-sh" + std::to_string(c.shnum);
  }
}

void CheckResults::FinishLiteral() {
  literal = true;
  healthy = true;
  recoverable = true;
  summary = "Healthy (LIT)";
}

Json CheckResultsJson(const CheckResults& r) {
  Json out = Json::NewObject();
  cJSON* o = out.get();
  cJSON_AddStringToObject(o, "storage-index", r.literal ? "" : Base32Encode(r.storage_index).c_str());
  cJSON_AddStringToObject(o, "summary", r.summary.c_str());
  cJSON* res = cJSON_AddObjectToObject(o, "results");
  cJSON_AddBoolToObject(res, "healthy", r.healthy);
  cJSON_AddBoolToObject(res, "recoverable", r.recoverable);
  if (r.literal) return out;  // Tahoe's answer for a LIT file holds these two only
  AddCount(res, "count-happiness", r.happiness);
  AddCount(res, "count-shares-good", r.shares_good);
  AddCount(res, "count-shares-needed", r.k);
  AddCount(res, "count-shares-expected", r.n);
  AddCount(res, "count-good-share-hosts", r.good_share_hosts);
  AddCount(res, "count-wrong-shares", r.wrong_shares);
  AddCount(res, "count-recoverable-versions", r.recoverable_versions);
  AddCount(res, "count-unrecoverable-versions", r.unrecoverable_versions);
  AddCount(res, "count-corrupt-shares", r.corrupt.size());
  cJSON* corrupt = cJSON_AddArrayToObject(res, "list-corrupt-shares");
  for (const CorruptShare& c : r.corrupt) {
    // Tahoe's triple [server, storage index, share number]; the reason is
    // cairn's.
    cJSON* item = cJSON_CreateArray();
    cJSON_AddItemToArray(item, cJSON_CreateString(c.server.c_str()));
    cJSON_AddItemToArray(item, cJSON_CreateString(Base32Encode(r.storage_index).c_str()));
    cJSON_AddItemToArray(item, cJSON_CreateNumber(c.shnum));
    cJSON_AddItemToArray(item, cJSON_CreateString(c.reason.c_str()));
    cJSON_AddItemToArray(corrupt, item);
  }
  cJSON* responding = cJSON_AddArrayToObject(res, "servers-responding");
  for (const std::string& s : r.servers_responding) cJSON_AddItemToArray(responding, cJSON_CreateString(s.c_str()));
  cJSON* failed = cJSON_AddArrayToObject(res, "servers-failed");
  for (const std::string& s : r.servers_failed) cJSON_AddItemToArray(failed, cJSON_CreateString(s.c_str()));
  cJSON* sharemap = cJSON_AddObjectToObject(res, "sharemap");
  if (r.is_mutable) {
    for (const auto& [key, names] : r.mutable_sharemap) cJSON_AddItemToObject(sharemap, key.c_str(), NameList(names));
  } else {
    for (const auto& [sh, names] : r.good) cJSON_AddItemToObject(sharemap, std::to_string(sh).c_str(), NameList(names));
  }
  cJSON_AddBoolToObject(res, "needs-rebalancing", r.needs_rebalancing);
  cJSON_AddBoolToObject(res, "verified", r.verified);
  if (r.is_mutable) {
    cJSON* versions = cJSON_AddArrayToObject(res, "versions");
    for (const VersionSeen& v : r.versions) {
      cJSON* item = cJSON_CreateObject();
      cJSON_AddNumberToObject(item, "seqnum", static_cast<double>(v.seqnum));
      cJSON_AddStringToObject(item, "root-hash", Base32Encode(v.root_hash).c_str());
      AddCount(item, "count-shares-good", v.shares.size());
      AddCount(item, "count-shares-needed", v.k);
      AddCount(item, "count-shares-expected", v.n);
      cJSON_AddBoolToObject(item, "recoverable", v.recoverable());
      cJSON_AddItemToArray(versions, item);
    }
  }
  return out;
}

}  // namespace cairn::grid
