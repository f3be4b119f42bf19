// Frame and error shapes of the control protocol. Any thread.
#include "cairn/control/protocol.h"

#include <cjson/cJSON.h>

namespace cairn::control {

bool Retryable(Code code) {
  switch (code) {
    case Code::kBusy:
    case Code::kUnavailable:
    case Code::kTimeout:
    case Code::kResourceExhausted:
    case Code::kShuttingDown:
    case Code::kInterrupted:
      return true;
    default:
      return false;
  }
}

Json ErrorToJson(const Status& status) {
  Json e = Json::NewObject();
  cJSON_AddStringToObject(e.get(), "code", std::string(CodeName(status.code())).c_str());
  cJSON_AddStringToObject(e.get(), "message", std::string(status.message()).c_str());
  cJSON_AddBoolToObject(e.get(), "retryable", Retryable(status.code()));
  return e;
}

Status ErrorFromJson(const cJSON* error) {
  const cJSON* code = cJSON_GetObjectItemCaseSensitive(error, "code");
  const cJSON* message = cJSON_GetObjectItemCaseSensitive(error, "message");
  std::string msg = cJSON_IsString(message) ? message->valuestring : "";
  if (!cJSON_IsString(code)) return Status::Internal("malformed error frame: " + msg);
  Code c;
  if (!CodeFromName(code->valuestring, &c) || c == Code::kOk) {
    return Status::Internal(std::string(code->valuestring) + ": " + msg);
  }
  return Status(c, msg);
}

ParsedRequest ParseRequest(std::string_view line) {
  ParsedRequest out;
  auto parsed = Json::Parse(line);
  if (!parsed.ok()) {
    out.bad_frame = true;
    out.error = Status::BadFrame(parsed.status().message());
    return out;
  }
  const cJSON* root = parsed->get();
  if (!cJSON_IsObject(root)) {
    out.bad_frame = true;
    out.error = Status::BadFrame("a frame must be a JSON object");
    return out;
  }
  if (auto dup = JsonObjectReader::Open(root, ""); !dup.ok()) {
    out.error = dup.status();  // with a duplicate "id" no id can be trusted
    return out;
  }
  const cJSON* id = cJSON_GetObjectItemCaseSensitive(root, "id");
  bool id_ok = false;
  if (cJSON_IsNumber(id)) {
    double d = id->valuedouble;
    id_ok = d >= -9007199254740992.0 && d <= 9007199254740992.0 && d == static_cast<double>(static_cast<long long>(d));
  } else if (cJSON_IsString(id)) {
    id_ok = std::string_view(id->valuestring).size() <= 64;
  }
  if (!id_ok) {
    out.error = Status::InvalidArgument("\"id\" must be an integer or a string of at most 64 characters");
    return out;
  }
  out.id = Json(cJSON_Duplicate(id, true));
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(root, "v");
  const cJSON* method = cJSON_GetObjectItemCaseSensitive(root, "method");
  const cJSON* params = cJSON_GetObjectItemCaseSensitive(root, "params");
  const cJSON* wait = cJSON_GetObjectItemCaseSensitive(root, "wait");
  if (v && !(cJSON_IsNumber(v) && v->valuedouble == kProtocolVersion)) {
    out.error = Status::UnsupportedVersion("this daemon speaks control protocol version " +
                                           std::to_string(kProtocolVersion));
  } else if (!cJSON_IsString(method)) {
    out.error = Status::InvalidArgument("\"method\" must be a string");
  } else if (params && !cJSON_IsObject(params)) {
    out.error = Status::InvalidArgument("\"params\" must be an object");
  } else if (wait && !cJSON_IsBool(wait)) {
    out.error = Status::InvalidArgument("\"wait\" must be true or false");
  } else {
    for (const cJSON* item = root->child; item; item = item->next) {
      std::string_view k = item->string;
      if (k != "v" && k != "id" && k != "method" && k != "params" && k != "wait" && k != "token") {
        out.error = Status::InvalidArgument("unknown frame key \"" + std::string(k) + "\"");
        break;
      }
    }
  }
  if (!out.error.ok()) return out;
  out.method = method->valuestring;
  out.params = Json(params ? cJSON_Duplicate(params, true) : cJSON_CreateObject());
  out.wait = !cJSON_IsFalse(wait);
  return out;
}

std::string RequestFrame(long long id, std::string_view method, Json params, bool wait) {
  Json req = Json::NewObject();
  cJSON_AddNumberToObject(req.get(), "v", kProtocolVersion);
  cJSON_AddNumberToObject(req.get(), "id", static_cast<double>(id));
  cJSON_AddStringToObject(req.get(), "method", std::string(method).c_str());
  if (params.get()) cJSON_AddItemToObject(req.get(), "params", params.release());
  if (!wait) cJSON_AddFalseToObject(req.get(), "wait");
  return req.Print() + "\n";
}

}  // namespace cairn::control
