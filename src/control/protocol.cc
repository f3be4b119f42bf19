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

AttachmentHead ParseAttachmentHead(std::string_view line, std::uint64_t max_bytes) {
  AttachmentHead out;
  auto parsed = Json::Parse(line);
  if (!parsed.ok() || !cJSON_IsObject(parsed->get())) return out;
  const cJSON* root = parsed->get();
  const cJSON* bytes = cJSON_GetObjectItemCaseSensitive(root, "bytes");
  if (!bytes) return out;
  out.present = true;
  // The count decides where the next frame starts: without a usable one the
  // stream cannot be followed, and the caller closes the connection.
  if (!cJSON_IsNumber(bytes) || bytes->valuedouble < 0 || bytes->valuedouble > 9007199254740992.0 ||
      bytes->valuedouble != static_cast<double>(static_cast<std::uint64_t>(bytes->valuedouble))) {
    out.error = Status::BadFrame("\"bytes\" must be a non-negative integer");
    return out;
  }
  out.bytes = static_cast<std::uint64_t>(bytes->valuedouble);
  if (out.bytes > max_bytes) {
    out.error = Status::FrameTooLarge("attachment of " + std::to_string(out.bytes) + " bytes; the limit is " +
                                      std::to_string(max_bytes));
    return out;
  }
  const cJSON* id = cJSON_GetObjectItemCaseSensitive(root, "id");
  if (id) out.id = Json(cJSON_Duplicate(id, true));
  const cJSON* data = cJSON_GetObjectItemCaseSensitive(root, "data");
  const cJSON* eof = cJSON_GetObjectItemCaseSensitive(root, "eof");
  if (!data) {
    out.error = Status::InvalidArgument("attachments travel in data frames: {\"id\", \"data\", \"bytes\", \"eof\"}");
    return out;
  }
  if (!cJSON_IsNumber(id) && !cJSON_IsString(id)) {
    out.error = Status::InvalidArgument("a data frame needs the \"id\" of its request");
  } else if (!cJSON_IsNumber(data) || data->valuedouble < 0 || data->valuedouble > 9007199254740992.0 ||
             data->valuedouble != static_cast<double>(static_cast<std::uint64_t>(data->valuedouble))) {
    // The range check comes first: casting a double past 2^64 is undefined.
    out.error = Status::InvalidArgument("\"data\" must be the frame's sequence number, from 0");
  } else if (eof && !cJSON_IsBool(eof)) {
    out.error = Status::InvalidArgument("\"eof\" must be true or false");
  } else {
    for (const cJSON* item = root->child; item; item = item->next) {
      std::string_view k = item->string;
      if (k != "v" && k != "id" && k != "data" && k != "bytes" && k != "eof") {
        out.error = Status::InvalidArgument("unknown data frame key \"" + std::string(k) + "\"");
        break;
      }
    }
  }
  if (!out.error.ok()) return out;
  out.data = true;
  out.seq = static_cast<std::uint64_t>(data->valuedouble);
  out.eof = cJSON_IsTrue(eof);
  return out;
}

std::string DataFrameLine(const cJSON* id, std::uint64_t seq, std::size_t bytes, bool eof) {
  Json f = Json::NewObject();
  cJSON_AddItemToObject(f.get(), "id", id ? cJSON_Duplicate(id, true) : cJSON_CreateNull());
  cJSON_AddNumberToObject(f.get(), "data", static_cast<double>(seq));
  cJSON_AddNumberToObject(f.get(), "bytes", static_cast<double>(bytes));
  if (eof) cJSON_AddTrueToObject(f.get(), "eof");
  return f.Print() + "\n";
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
