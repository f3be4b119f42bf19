// The RSA key of the first "ssk" vector in caps.json, with what the mutable
// tests derive from it (generating a key is slow under the sanitizers).
// Made once per test binary; any test thread.
#pragma once

#include <cjson/cJSON.h>

#include <string>

#include "cairn/caps/keys.h"
#include "cairn/crypto/rsa.h"
#include "support/vectors.h"

namespace cairn::mutable_files {

struct VectorKey {
  crypto::RsaKey key;
  caps::MutableKeys keys;
  std::string pub;      // SPKI DER
  std::string encpriv;  // the private key as shares store it (CryptPrivateKey)
};

inline const VectorKey& F() {
  static const VectorKey* f = [] {
    Json doc = testing::LoadVectors("caps.json");
    const cJSON* v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(doc.get(), "vectors")) {
      if (testing::Str(v, "kind") != "ssk") continue;
      auto key = crypto::RsaKey::ParsePrivate(testing::Str(v, "key_pem"));
      CAIRN_CHECK(key.ok(), "vector key");
      std::string pub = key->PublicSpkiDer();
      caps::MutableKeys keys = caps::DeriveMutableKeys(key->PrivatePkcs8Der(), pub);
      std::string encpriv = caps::CryptPrivateKey(keys.writekey, key->PrivatePkcs8Der());
      return new VectorKey{std::move(key).value(), keys, pub, encpriv};
    }
    CAIRN_CHECK(false, "no ssk vector");
    return static_cast<VectorKey*>(nullptr);
  }();
  return *f;
}

}  // namespace cairn::mutable_files
