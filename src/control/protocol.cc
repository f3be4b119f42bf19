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

std::string RequestFrame(long long id, std::string_view method, Json params) {
  Json req = Json::NewObject();
  cJSON_AddNumberToObject(req.get(), "v", kProtocolVersion);
  cJSON_AddNumberToObject(req.get(), "id", static_cast<double>(id));
  cJSON_AddStringToObject(req.get(), "method", std::string(method).c_str());
  if (params.get()) cJSON_AddItemToObject(req.get(), "params", params.release());
  return req.Print() + "\n";
}

}  // namespace cairn::control
