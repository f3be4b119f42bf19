// Test tool: CBOR <-> a JSON "diagnostic" form, so tests in Python can check
// cairn's CBOR codec against cbor2 (which we did not write).
//
//   cbor_tool decode < data.cbor > diag.json
//   cbor_tool encode < diag.json > data.cbor
//
// Diagnostic form: {"uint":"N"} {"neg":"-N"} {"bytes":"hex"} {"text":"..."}
// {"array":[...]} {"map":[[k,v],...]} {"tag":"N","value":x} true false null
// {"undefined":true}. Integers are strings: JSON numbers lose precision.
#include <cjson/cJSON.h>

#include <cctype>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include "cairn/cbor/cbor.h"
#include "cairn/core/json.h"

namespace {

using namespace cairn;

std::string Hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

cJSON* Obj(const char* key, cJSON* value) {
  cJSON* o = cJSON_CreateObject();
  cJSON_AddItemToObject(o, key, value);
  return o;
}

Result<cJSON*> Decode(cbor::Reader& r) {
  cbor::Item it;
  CAIRN_TRY(r.Next(&it));
  switch (it.type) {
    case cbor::Type::kUint: return Obj("uint", cJSON_CreateString(std::to_string(it.arg).c_str()));
    case cbor::Type::kNegInt: {
      // -1 - arg, printed exactly (it may be below INT64_MIN).
      std::string n = std::to_string(it.arg);
      int i = static_cast<int>(n.size()) - 1;
      while (i >= 0 && n[static_cast<std::size_t>(i)] == '9') n[static_cast<std::size_t>(i--)] = '0';
      if (i < 0) n.insert(n.begin(), '1'); else n[static_cast<std::size_t>(i)]++;
      return Obj("neg", cJSON_CreateString(("-" + n).c_str()));
    }
    case cbor::Type::kBytes: return Obj("bytes", cJSON_CreateString(Hex(it.str).c_str()));
    case cbor::Type::kText: return Obj("text", cJSON_CreateString(std::string(it.str).c_str()));
    case cbor::Type::kArray: {
      cJSON* a = cJSON_CreateArray();
      for (std::uint64_t i = 0; i < it.arg; ++i) {
        auto e = Decode(r);
        if (!e.ok()) { cJSON_Delete(a); return e.status(); }
        cJSON_AddItemToArray(a, *e);
      }
      return Obj("array", a);
    }
    case cbor::Type::kMap: {
      cJSON* a = cJSON_CreateArray();
      for (std::uint64_t i = 0; i < it.arg; ++i) {
        cJSON* pair = cJSON_CreateArray();
        cJSON_AddItemToArray(a, pair);
        for (int j = 0; j < 2; ++j) {
          auto e = Decode(r);
          if (!e.ok()) { cJSON_Delete(a); return e.status(); }
          cJSON_AddItemToArray(pair, *e);
        }
      }
      return Obj("map", a);
    }
    case cbor::Type::kTag: {
      auto v = Decode(r);
      if (!v.ok()) return v.status();
      cJSON* o = Obj("tag", cJSON_CreateString(std::to_string(it.arg).c_str()));
      cJSON_AddItemToObject(o, "value", *v);
      return o;
    }
    case cbor::Type::kFalse: return cJSON_CreateFalse();
    case cbor::Type::kTrue: return cJSON_CreateTrue();
    case cbor::Type::kNull: return cJSON_CreateNull();
    case cbor::Type::kUndefined: return Obj("undefined", cJSON_CreateTrue());
  }
  return Status::Internal("unreachable");
}

bool Unhex(const std::string& h, std::string* out) {
  if (h.size() % 2) return false;
  for (std::size_t i = 0; i < h.size(); i += 2) {
    int hi = std::isxdigit(static_cast<unsigned char>(h[i])) ? std::stoi(h.substr(i, 1), nullptr, 16) : -1;
    int lo = std::isxdigit(static_cast<unsigned char>(h[i + 1])) ? std::stoi(h.substr(i + 1, 1), nullptr, 16) : -1;
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

// Subtracts one from a decimal string ("10" -> "9").
std::string MinusOne(std::string n) {
  int i = static_cast<int>(n.size()) - 1;
  while (i >= 0 && n[static_cast<std::size_t>(i)] == '0') n[static_cast<std::size_t>(i--)] = '9';
  if (i >= 0) n[static_cast<std::size_t>(i)]--;
  if (n.size() > 1 && n[0] == '0') n.erase(0, 1);
  return n;
}

bool Encode(const cJSON* d, cbor::Writer& w) {
  if (cJSON_IsTrue(d)) return w.Bool(true), true;
  if (cJSON_IsFalse(d)) return w.Bool(false), true;
  if (cJSON_IsNull(d)) return w.Null(), true;
  const cJSON* v;
  if ((v = cJSON_GetObjectItemCaseSensitive(d, "uint"))) return w.Uint(std::stoull(v->valuestring)), true;
  if ((v = cJSON_GetObjectItemCaseSensitive(d, "neg"))) {
    return w.Negative(std::stoull(MinusOne(std::string(v->valuestring).substr(1)))), true;
  }
  if ((v = cJSON_GetObjectItemCaseSensitive(d, "bytes"))) {
    std::string b;
    if (!Unhex(v->valuestring, &b)) return false;
    return w.Bytes(b), true;
  }
  if ((v = cJSON_GetObjectItemCaseSensitive(d, "text"))) return w.Text(v->valuestring), true;
  if ((v = cJSON_GetObjectItemCaseSensitive(d, "array"))) {
    w.Array(static_cast<std::uint64_t>(cJSON_GetArraySize(v)));
    const cJSON* e;
    cJSON_ArrayForEach(e, v) {
      if (!Encode(e, w)) return false;
    }
    return true;
  }
  if ((v = cJSON_GetObjectItemCaseSensitive(d, "map"))) {
    w.Map(static_cast<std::uint64_t>(cJSON_GetArraySize(v)));
    const cJSON* pair;
    cJSON_ArrayForEach(pair, v) {
      if (!Encode(cJSON_GetArrayItem(pair, 0), w) || !Encode(cJSON_GetArrayItem(pair, 1), w)) return false;
    }
    return true;
  }
  if ((v = cJSON_GetObjectItemCaseSensitive(d, "tag"))) {
    w.Tag(std::stoull(v->valuestring));
    return Encode(cJSON_GetObjectItemCaseSensitive(d, "value"), w);
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  std::string in((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  if (mode == "decode") {
    cbor::Reader r(in);
    auto d = Decode(r);
    if (!d.ok()) {
      std::fprintf(stderr, "%s\n", d.status().ToString().c_str());
      return 1;
    }
    Json out(*d);
    Status end = r.ExpectEnd();
    if (!end.ok()) {
      std::fprintf(stderr, "%s\n", end.ToString().c_str());
      return 1;
    }
    std::printf("%s\n", out.Print().c_str());
    return 0;
  }
  if (mode == "encode") {
    auto d = Json::Parse(in);
    cbor::Writer w;
    if (!d.ok() || !Encode(d->get(), w)) {
      std::fprintf(stderr, "cbor_tool: not a diagnostic document\n");
      return 1;
    }
    std::fwrite(w.data().data(), 1, w.data().size(), stdout);
    return 0;
  }
  std::fprintf(stderr, "usage: cbor_tool decode|encode\n");
  return 2;
}
