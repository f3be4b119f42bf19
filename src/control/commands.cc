// THE control command table. Loop thread only.
#include "cairn/control/commands.h"

#include <cjson/cJSON.h>

#include "cairn/control/protocol.h"
#include "cairn/core/version.h"

namespace cairn::control {
namespace {

using Handler = void (*)(NodeView& node, Request& req, Reply& reply);

// Rejects any parameter; for methods that take none.
Status NoParams(const Request& req) {
  if (req.params.get() && req.params.get()->child) {
    return Status::InvalidArgument("method \"" + req.method + "\" takes no parameter \"" +
                                   req.params.get()->child->string + "\"");
  }
  return Status();
}

void Hello(NodeView&, Request& req, Reply& reply) {
  // Clients may introduce themselves; nothing else is accepted.
  auto r = JsonObjectReader::Open(req.params.get(), "params.");
  if (!r.ok()) return reply.Error(r.status());
  std::string client;
  Status st = r->String("client", &client);
  if (st.ok()) st = r->Finish();
  if (!st.ok()) return reply.Error(st);
  Json out = Json::NewObject();
  cJSON* protocols = cJSON_AddArrayToObject(out.get(), "protocol");
  cJSON_AddItemToArray(protocols, cJSON_CreateNumber(kProtocolVersion));
  cJSON_AddStringToObject(out.get(), "server", (std::string("cairnd ") + kVersion).c_str());
  cJSON* methods = cJSON_AddArrayToObject(out.get(), "methods");
  for (const std::string& m : Commands::Methods()) cJSON_AddItemToArray(methods, cJSON_CreateString(m.c_str()));
  reply.Result(std::move(out));
}

void GetStatus(NodeView& node, Request& req, Reply& reply) {
  Status st = NoParams(req);
  if (!st.ok()) return reply.Error(st);
  reply.Result(node.StatusJson());
}

struct Method {
  const char* name;
  Handler handler;
};

// One line per method.
constexpr Method kMethods[] = {
    {"hello", Hello},
    {"status", GetStatus},
};

}  // namespace

Commands::Commands(NodeView& node) : node_(node) {}

std::vector<std::string> Commands::Methods() {
  std::vector<std::string> out;
  for (const Method& m : kMethods) out.emplace_back(m.name);
  return out;
}

void Commands::Handle(Request request, Reply reply) {
  for (const Method& m : kMethods) {
    if (request.method == m.name) return m.handler(node_, request, reply);
  }
  reply.Error(Status::UnknownMethod("unknown method \"" + request.method + "\""));
}

}  // namespace cairn::control
