// servers.add / servers.remove / servers.list: the storage servers this node
// publishes to and retrieves from (the grid). Each is kept in the control
// store's "servers" table under its server id (the SPKI hash in its NURL), as
// {"nurl", "nickname", "added_ms"}. Adding and removing hold the lock
// "servers" (the whole collection: an invariant, such as a nickname being
// unique, spans entries), and check and change after it is held.
// Loop thread only.
#include <cjson/cJSON.h>

#include "cairn/core/clock.h"
#include "cairn/gbs/nurl.h"
#include "control/handlers.h"

namespace cairn::control {
namespace {

// The stored record of a server.
Json Record(const std::string& nurl, const std::string& nickname) {
  Json r = Json::NewObject();
  cJSON_AddStringToObject(r.get(), "nurl", nurl.c_str());
  cJSON_AddStringToObject(r.get(), "nickname", nickname.c_str());
  cJSON_AddNumberToObject(r.get(), "added_ms", static_cast<double>(clock::UnixMs()));
  return r;
}

// A listing entry: {"id", "nurl", "nickname", "added_ms"}.
Json Entry(const std::string& id, const std::string& record_text) {
  auto parsed = Json::Parse(record_text);
  Json out = parsed.ok() ? std::move(parsed).value() : Json::NewObject();
  cJSON_AddStringToObject(out.get(), "id", id.c_str());
  return out;
}

std::string NicknameOf(const std::string& record_text) {
  auto parsed = Json::Parse(record_text);
  if (!parsed.ok()) return "";
  const cJSON* n = cJSON_GetObjectItemCaseSensitive(parsed->get(), "nickname");
  return cJSON_IsString(n) ? n->valuestring : "";
}

}  // namespace

Result<std::vector<grid::ServerEntry>> GridSnapshot(const NameTable& servers) {
  std::vector<grid::ServerEntry> out;
  CAIRN_TRY_ASSIGN(auto all, servers.List());
  for (const auto& [id, text] : all) {
    CAIRN_TRY_ASSIGN(Json record, Json::Parse(text));
    const cJSON* nurl = cJSON_GetObjectItemCaseSensitive(record.get(), "nurl");
    const cJSON* nickname = cJSON_GetObjectItemCaseSensitive(record.get(), "nickname");
    if (!cJSON_IsString(nurl)) return Status::Internal("server " + id + " has no NURL");
    out.push_back(grid::ServerEntry{id, nurl->valuestring, cJSON_IsString(nickname) ? nickname->valuestring : id});
  }
  return out;
}

void ServersAdd(CommandsState& c, Request& req, Reply& reply) {
  auto r = JsonObjectReader::Open(req.params.get(), "params.");
  if (!r.ok()) return reply.Error(r.status());
  std::string nurl_text, nickname;
  Status st = r->String("nurl", &nurl_text, true);
  if (st.ok()) st = r->String("nickname", &nickname);
  if (st.ok()) st = r->Finish();
  auto nurl = gbs::ParseNurl(nurl_text);
  if (st.ok() && !nurl.ok()) st = nurl.status();
  if (st.ok() && nickname.size() > 64) st = Status::InvalidArgument("a nickname is at most 64 bytes");
  if (!st.ok()) return reply.Error(st);
  if (nickname.empty()) nickname = nurl->host + ":" + std::to_string(nurl->port);
  std::string id = nurl->spki_hash;
  std::string canonical = gbs::FormatNurl(*nurl);
  TaskSpec spec = NewTaskSpec("servers.add", req, {LockKeys::Servers(LockMode::kExclusive)});
  NameTable* servers = &c.servers;
  spec.body = [servers, id, canonical, nickname](TaskRun& run) {
    TaskRun* runp = &run;
    // Fresh state, after the lock: nicknames are unique across servers.
    auto all = servers->List();
    if (!all.ok()) return run.Fail(all.status());
    for (const auto& [other, text] : *all) {
      if (NicknameOf(text) == nickname && other != id) {
        return run.Fail(Status::Conflict("nickname \"" + nickname + "\" is taken by server " + other));
      }
    }
    std::string record = Record(canonical, nickname).Print();
    servers->Add(id, record, [runp, id, record](Status added) {
      if (!added.ok()) return runp->Fail(added);
      runp->Succeed(Entry(id, record));
    });
  };
  RunTask(c, req, reply, std::move(spec));
}

void ServersRemove(CommandsState& c, Request& req, Reply& reply) {
  std::string which;
  Status st = StringParams(req, {{"server", &which}});
  if (!st.ok()) return reply.Error(st);
  TaskSpec spec = NewTaskSpec("servers.remove", req, {LockKeys::Servers(LockMode::kExclusive)});
  NameTable* servers = &c.servers;
  spec.body = [servers, which](TaskRun& run) {
    TaskRun* runp = &run;
    // Resolve an id or a nickname on fresh state, under the lock.
    auto all = servers->List();
    if (!all.ok()) return run.Fail(all.status());
    std::string id;
    for (const auto& [other, text] : *all) {
      if (other == which || NicknameOf(text) == which) id = other;
    }
    if (id.empty()) return run.Fail(Status::NotFound("no server \"" + which + "\" (give its id or nickname)"));
    servers->Remove(id, [runp, id](Result<std::string> record) {
      if (!record.ok()) return runp->Fail(record.status());
      runp->Succeed(Entry(id, *record));
    });
  };
  RunTask(c, req, reply, std::move(spec));
}

void ServersList(CommandsState& c, Request& req, Reply& reply) {
  Status st = NoParams(req);
  if (!st.ok()) return reply.Error(st);
  auto all = c.servers.List();
  if (!all.ok()) return reply.Error(all.status());
  Json out = Json::NewObject();
  cJSON* list = cJSON_AddArrayToObject(out.get(), "servers");
  for (const auto& [id, text] : *all) cJSON_AddItemToArray(list, Entry(id, text).release());
  reply.Result(std::move(out));
}

}  // namespace cairn::control
