// servers.add / servers.import / servers.remove / servers.list: the storage servers this node
// publishes to and retrieves from (the grid). Each is kept in the control
// store's "servers" table under its server id (the SPKI hash in its NURL), as
// {"nurl", "nickname", "added_ms"}, plus, for a server added from a
// Tahoe-LAFS announcement, {"identity": "announced", "tub_id",
// "permutation_seed"} (Tahoe base32) and "server_id" when one was given. A
// record without "identity" is a cairn node's: its seeds come from its NURL
// (grid/identity.h), so grids made before announcements are unchanged.
// servers.import adds the servers of a Tahoe-LAFS client's servers.yaml (read
// by the CLI) all at once or not at all. Adding, importing and removing hold
// the lock "servers" (the whole collection: an
// invariant, such as a nickname being unique, spans entries), and check and
// change after it is held. Loop thread only.
#include <cjson/cJSON.h>

#include "cairn/core/base32.h"
#include "cairn/core/clock.h"
#include "cairn/gbs/nurl.h"
#include "control/handlers.h"

namespace cairn::control {
namespace {

// What servers.add stores for one server.
struct NewServer {
  std::string id;         // the NURL's SPKI hash
  std::string nurl;       // canonical
  std::string nickname;
  grid::ServerIdentity identity;
  std::string server_id;  // Tahoe's id for it (a servers.yaml key), or ""
};

// The stored record of a server.
Json Record(const NewServer& s) {
  Json r = Json::NewObject();
  cJSON_AddStringToObject(r.get(), "nurl", s.nurl.c_str());
  cJSON_AddStringToObject(r.get(), "nickname", s.nickname.c_str());
  cJSON_AddNumberToObject(r.get(), "added_ms", static_cast<double>(clock::UnixMs()));
  if (s.identity.kind == grid::IdentityKind::kAnnounced) {
    cJSON_AddStringToObject(r.get(), "identity", grid::IdentityKindName(s.identity.kind));
    cJSON_AddStringToObject(r.get(), "tub_id", Base32Encode(s.identity.tub_id).c_str());
    cJSON_AddStringToObject(r.get(), "permutation_seed", Base32Encode(s.identity.permutation_seed).c_str());
    if (!s.server_id.empty()) cJSON_AddStringToObject(r.get(), "server_id", s.server_id.c_str());
  }
  return r;
}

// The identity a record stands for (a cairn node's unless it says otherwise).
Result<grid::ServerIdentity> IdentityOf(const cJSON* record, const std::string& nurl) {
  const cJSON* kind = cJSON_GetObjectItemCaseSensitive(record, "identity");
  if (!cJSON_IsString(kind) || std::string(kind->valuestring) == "cairn") return grid::CairnIdentity(nurl);
  const cJSON* tub = cJSON_GetObjectItemCaseSensitive(record, "tub_id");
  const cJSON* seed = cJSON_GetObjectItemCaseSensitive(record, "permutation_seed");
  if (std::string(kind->valuestring) != "announced" || !cJSON_IsString(tub) || !cJSON_IsString(seed)) {
    return Status::Internal("the server's identity record is damaged");
  }
  grid::ServerIdentity id;
  id.kind = grid::IdentityKind::kAnnounced;
  CAIRN_TRY_ASSIGN(id.tub_id, Base32Decode(tub->valuestring));
  CAIRN_TRY_ASSIGN(id.permutation_seed, Base32Decode(seed->valuestring));
  return id;
}

// A listing entry: the record, its "id", and its identity spelled out
// ("identity", "tub_id", "permutation_seed"), whichever kind it is.
Json Entry(const std::string& id, const std::string& record_text) {
  auto parsed = Json::Parse(record_text);
  Json out = parsed.ok() ? std::move(parsed).value() : Json::NewObject();
  cJSON_AddStringToObject(out.get(), "id", id.c_str());
  const cJSON* nurl = cJSON_GetObjectItemCaseSensitive(out.get(), "nurl");
  if (cJSON_GetObjectItemCaseSensitive(out.get(), "identity")) return out;  // announced: all stored
  cJSON_AddStringToObject(out.get(), "identity", grid::IdentityKindName(grid::IdentityKind::kCairn));
  auto identity = grid::CairnIdentity(cJSON_IsString(nurl) ? nurl->valuestring : "");
  if (identity.ok()) {
    cJSON_AddStringToObject(out.get(), "tub_id", Base32Encode(identity->tub_id).c_str());
    cJSON_AddStringToObject(out.get(), "permutation_seed", Base32Encode(identity->permutation_seed).c_str());
  }
  return out;
}

std::string NicknameOf(const std::string& record_text) {
  auto parsed = Json::Parse(record_text);
  if (!parsed.ok()) return "";
  const cJSON* n = cJSON_GetObjectItemCaseSensitive(parsed->get(), "nickname");
  return cJSON_IsString(n) ? n->valuestring : "";
}

const char* StringIn(const cJSON* obj, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsString(v) ? v->valuestring : "";
}

// A server from a Tahoe-LAFS announcement (the `ann` stanza of a
// servers.yaml entry) and its server id (the entry's key, or ""): the first
// of its anonymous-storage-NURLs that is a GBS NURL, and the identity from
// its FURL and permutation seed. Keys cairn does not need are ignored (an
// announcement carries versions and more). Messages never quote a NURL or
// FURL past its tub id: they hold the swissnum.
Result<NewServer> FromAnnouncement(const cJSON* ann, const std::string& server_id) {
  if (!cJSON_IsObject(ann)) return Status::InvalidArgument("the announcement must be an object (the \"ann\" stanza)");
  const cJSON* nurls = cJSON_GetObjectItemCaseSensitive(ann, "anonymous-storage-NURLs");
  if (!cJSON_IsArray(nurls) || cJSON_GetArraySize(nurls) == 0) {
    return Status::InvalidArgument(
        "the announcement has no anonymous-storage-NURLs: the server does not speak GBS (HTTP), and cairn "
        "reaches servers only over GBS");
  }
  NewServer out;
  const cJSON* n;
  cJSON_ArrayForEach(n, nurls) {
    if (!cJSON_IsString(n)) continue;
    auto parsed = gbs::ParseNurl(n->valuestring);
    if (!parsed.ok()) continue;
    out.id = parsed->spki_hash;
    out.nurl = gbs::FormatNurl(*parsed);
    out.nickname = StringIn(ann, "nickname");
    if (out.nickname.empty()) out.nickname = parsed->host + ":" + std::to_string(parsed->port);
    break;
  }
  if (out.nurl.empty()) {
    return Status::InvalidArgument("none of the announcement's anonymous-storage-NURLs is a GBS NURL "
                                   "(pb://SPKI-HASH@HOST:PORT/SWISSNUM#v=1)");
  }
  const cJSON* seed = cJSON_GetObjectItemCaseSensitive(ann, "permutation-seed-base32");
  if (seed && !cJSON_IsString(seed)) return Status::InvalidArgument("permutation-seed-base32 must be a string");
  CAIRN_TRY_ASSIGN(out.identity, grid::AnnouncedIdentity(StringIn(ann, "anonymous-storage-FURL"),
                                                         cJSON_IsString(seed) ? seed->valuestring : "", server_id));
  out.server_id = server_id;
  // A cairn node's entry (`cairn tahoe-entry`) announces its SPKI-derived
  // seed as both: it is a cairn node, kept as one.
  auto own = grid::CairnIdentity(out.nurl);
  if (own.ok() && own->tub_id == out.identity.tub_id && own->permutation_seed == out.identity.permutation_seed) {
    out.identity = *own;
  }
  return out;
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
    grid::ServerEntry e{id, nurl->valuestring, cJSON_IsString(nickname) ? nickname->valuestring : id, {}};
    // A cairn node's identity is left for the grid to derive from its NURL.
    const cJSON* kind = cJSON_GetObjectItemCaseSensitive(record.get(), "identity");
    if (cJSON_IsString(kind)) {
      auto identity = IdentityOf(record.get(), e.nurl);
      if (!identity.ok()) return identity.status().WithContext("server " + id);
      e.identity = std::move(identity).value();
    }
    out.push_back(std::move(e));
  }
  return out;
}

void ServersAdd(CommandsState& c, Request& req, Reply& reply) {
  auto r = JsonObjectReader::Open(req.params.get(), "params.");
  if (!r.ok()) return reply.Error(r.status());
  std::string nurl_text, nickname, server_id;
  const cJSON* ann = nullptr;
  Status st = r->String("nurl", &nurl_text);
  if (st.ok()) st = r->Object("announcement", &ann);
  if (st.ok()) st = r->String("server_id", &server_id);
  if (st.ok()) st = r->String("nickname", &nickname);
  if (st.ok()) st = r->Finish();
  if (st.ok() && nurl_text.empty() == (ann == nullptr)) {
    st = Status::InvalidArgument(
        "give either params.nurl (a cairn node) or params.announcement (a Tahoe-LAFS server's)");
  }
  if (st.ok() && nickname.size() > 64) st = Status::InvalidArgument("a nickname is at most 64 bytes");
  if (!st.ok()) return reply.Error(st);
  NewServer server;
  if (ann) {
    auto announced = FromAnnouncement(ann, server_id);
    if (!announced.ok()) return reply.Error(announced.status());
    server = std::move(announced).value();
  } else {
    auto nurl = gbs::ParseNurl(nurl_text);
    if (!nurl.ok()) return reply.Error(nurl.status());
    if (!server_id.empty()) {
      return reply.Error(Status::InvalidArgument("params.server_id goes with params.announcement"));
    }
    server.id = nurl->spki_hash;
    server.nurl = gbs::FormatNurl(*nurl);
    server.nickname = nurl->host + ":" + std::to_string(nurl->port);
  }
  if (!nickname.empty()) server.nickname = nickname;
  if (server.nickname.size() > 64) {
    return reply.Error(
        Status::InvalidArgument("the announced nickname is longer than 64 bytes: give one with --nickname"));
  }
  TaskSpec spec = NewTaskSpec("servers.add", req, {LockKeys::Servers(LockMode::kExclusive)});
  NameTable* servers = &c.servers;
  spec.body = [servers, server](TaskRun& run) {
    TaskRun* runp = &run;
    const std::string& id = server.id;
    // Fresh state, after the lock: nicknames are unique across servers.
    auto all = servers->List();
    if (!all.ok()) return run.Fail(all.status());
    for (const auto& [other, text] : *all) {
      if (NicknameOf(text) == server.nickname && other != id) {
        return run.Fail(Status::Conflict("nickname \"" + server.nickname + "\" is taken by server " + other));
      }
    }
    std::string record = Record(server).Print();
    servers->Add(id, record, [runp, id, record](Status added) {
      if (!added.ok()) return runp->Fail(added);
      runp->Succeed(Entry(id, record));
    });
  };
  RunTask(c, req, reply, std::move(spec));
}

void ServersImport(CommandsState& c, Request& req, Reply& reply) {
  auto r = JsonObjectReader::Open(req.params.get(), "params.");
  if (!r.ok()) return reply.Error(r.status());
  r->Accept("servers");
  Status st = r->Finish();
  const cJSON* list = cJSON_GetObjectItemCaseSensitive(req.params.get(), "servers");
  if (st.ok() && (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0)) {
    st = Status::InvalidArgument("params.servers must be a non-empty list of {\"server_id\", \"announcement\"}");
  }
  if (!st.ok()) return reply.Error(st);
  // Every entry is checked before anything is added: one bad entry refuses
  // the whole import, naming it.
  std::vector<NewServer> batch;
  const cJSON* e;
  cJSON_ArrayForEach(e, list) {
    const std::string id_text = StringIn(e, "server_id");
    const std::string label = id_text.empty() ? "#" + std::to_string(batch.size() + 1) : "\"" + id_text + "\"";
    auto server = FromAnnouncement(cJSON_GetObjectItemCaseSensitive(e, "announcement"), id_text);
    if (!server.ok()) return reply.Error(server.status().WithContext("server " + label + "; nothing was imported"));
    if (server->nickname.size() > 64) {
      return reply.Error(Status::InvalidArgument("server " + label +
                                                 ": its nickname is longer than 64 bytes; nothing was imported"));
    }
    for (const NewServer& other : batch) {
      if (other.id == server->id || other.nickname == server->nickname) {
        return reply.Error(Status::InvalidArgument("servers \"" + other.server_id + "\" and " + label +
                                                   " have the same NURL or nickname; nothing was imported"));
      }
    }
    batch.push_back(std::move(server).value());
  }
  TaskSpec spec = NewTaskSpec("servers.import", req, {LockKeys::Servers(LockMode::kExclusive)});
  NameTable* servers = &c.servers;
  spec.body = [servers, batch](TaskRun& run) {
    TaskRun* runp = &run;
    auto all = servers->List();
    if (!all.ok()) return run.Fail(all.status());
    for (const NewServer& s : batch) {
      for (const auto& [other, text] : *all) {
        if (other == s.id) {
          return run.Fail(Status::Conflict("server \"" + s.nickname + "\" (" + s.id +
                                           ") is in the grid already; nothing was imported"));
        }
        if (NicknameOf(text) == s.nickname) {
          return run.Fail(Status::Conflict("nickname \"" + s.nickname + "\" is taken by server " + other +
                                           "; nothing was imported"));
        }
      }
    }
    std::vector<std::pair<std::string, std::string>> records;
    for (const NewServer& s : batch) records.emplace_back(s.id, Record(s).Print());
    servers->AddAll(records, [runp, records](Status added) {
      if (!added.ok()) return runp->Fail(added.WithContext("nothing was imported"));
      Json out = Json::NewObject();
      cJSON* imported = cJSON_AddArrayToObject(out.get(), "imported");
      for (const auto& [id, record] : records) cJSON_AddItemToArray(imported, Entry(id, record).release());
      runp->Succeed(std::move(out));
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
