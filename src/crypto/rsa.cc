// RSA-2048 for mutable files over mbedTLS's pk and rsa modules; the calls
// whose signatures differ between 2.28 and 3.6 go through mbedtls_compat.
#include "cairn/crypto/rsa.h"

#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>

#include <cstdio>
#include <optional>
#include <vector>

#include "cairn/crypto/hash.h"
#include "cairn/crypto/mbedtls_compat.h"

namespace cairn::crypto {
namespace {

const unsigned char* Bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

// DER length octets.
void AppendDerLength(std::string& out, std::size_t len) {
  if (len < 0x80) {
    out.push_back(static_cast<char>(len));
    return;
  }
  std::string digits;
  for (std::size_t v = len; v != 0; v >>= 8) digits.insert(digits.begin(), static_cast<char>(v & 0xff));
  out.push_back(static_cast<char>(0x80 | digits.size()));
  out += digits;
}

std::string DerTlv(unsigned char tag, std::string_view body) {
  std::string out(1, static_cast<char>(tag));
  AppendDerLength(out, body.size());
  out += body;
  return out;
}

// "what failed (mbedTLS -0x4080)"
std::string MbedError(const char* what, int rc) {
  char code[16];
  std::snprintf(code, sizeof code, "-0x%04x", static_cast<unsigned>(-rc));
  return std::string(what) + " failed (mbedTLS " + code + ")";
}

}  // namespace

std::string WrapPkcs1InPkcs8(std::string_view pkcs1_der) {
  // PrivateKeyInfo ::= SEQUENCE { version INTEGER 0,
  //   AlgorithmIdentifier SEQUENCE { rsaEncryption OID, NULL }, OCTET STRING key }
  static constexpr unsigned char kVersionAndAlgorithm[] = {
      0x02, 0x01, 0x00,                                                              // INTEGER 0
      0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,  // 1.2.840.113549.1.1.1
      0x05, 0x00};                                                                   // NULL
  std::string body(reinterpret_cast<const char*>(kVersionAndAlgorithm), sizeof kVersionAndAlgorithm);
  body += DerTlv(0x04, pkcs1_der);
  return DerTlv(0x30, body);
}

struct RsaKey::State {
  mbedtls_pk_context pk;
  bool has_private = false;
  State() { mbedtls_pk_init(&pk); }
  ~State() { mbedtls_pk_free(&pk); }
  mbedtls_rsa_context* rsa() const { return mbedtls_pk_rsa(pk); }
};

RsaKey::RsaKey(std::unique_ptr<State> state) : state_(std::move(state)) {}
RsaKey::~RsaKey() = default;
RsaKey::RsaKey(RsaKey&&) noexcept = default;
RsaKey& RsaKey::operator=(RsaKey&&) noexcept = default;

namespace {

Status CheckRsa2048(const mbedtls_pk_context* pk) {
  if (mbedtls_pk_get_type(pk) != MBEDTLS_PK_RSA) return Status::InvalidArgument("the key is not an RSA key");
  std::size_t bits = mbedtls_pk_get_bitlen(pk);
  if (bits != kRsaBits) {
    return Status::InvalidArgument("the RSA key has " + std::to_string(bits) + " bits; mutable files use 2048");
  }
  return Status::Ok();
}

}  // namespace

Result<RsaKey> RsaKey::Generate() {
  compat::Drbg drbg;
  if (int rc = drbg.Seed("cairn rsa keygen"); rc != 0) return Status::Internal(MbedError("DRBG seed", rc));
  auto state = std::make_unique<State>();
  if (int rc = mbedtls_pk_setup(&state->pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)); rc != 0) {
    return Status::Internal(MbedError("mbedtls_pk_setup", rc));
  }
  if (int rc = mbedtls_rsa_gen_key(state->rsa(), compat::Drbg::Random, drbg.ctx(), kRsaBits, 65537); rc != 0) {
    return Status::Internal(MbedError("mbedtls_rsa_gen_key", rc));
  }
  state->has_private = true;
  return RsaKey(std::move(state));
}

Result<RsaKey> RsaKey::ParsePrivate(std::string_view pem_or_der) {
  compat::Drbg drbg;
  if (int rc = drbg.Seed("cairn rsa parse"); rc != 0) return Status::Internal(MbedError("DRBG seed", rc));
  // mbedTLS wants PEM NUL-terminated, with the NUL counted.
  std::string buf(pem_or_der);
  bool pem = buf.find("-----BEGIN") != std::string::npos;
  std::size_t len = buf.size() + (pem ? 1 : 0);
  auto state = std::make_unique<State>();
  if (int rc = compat::PkParseKey(&state->pk, Bytes(buf), len, &drbg); rc != 0) {
    return Status::InvalidArgument(MbedError("parsing the private key", rc));
  }
  CAIRN_TRY(CheckRsa2048(&state->pk));
  state->has_private = true;
  return RsaKey(std::move(state));
}

Result<RsaKey> RsaKey::ParsePublicDer(std::string_view spki_der) {
  auto state = std::make_unique<State>();
  if (int rc = mbedtls_pk_parse_public_key(&state->pk, Bytes(spki_der), spki_der.size()); rc != 0) {
    return Status::InvalidArgument(MbedError("parsing the public key", rc));
  }
  CAIRN_TRY(CheckRsa2048(&state->pk));
  return RsaKey(std::move(state));
}

bool RsaKey::has_private() const { return state_->has_private; }

std::string RsaKey::PrivatePkcs8Der() const {
  CAIRN_CHECK(state_->has_private, "PrivatePkcs8Der on a public key");
  std::vector<unsigned char> buf(4096);
  int n = mbedtls_pk_write_key_der(&state_->pk, buf.data(), buf.size());
  CAIRN_CHECK(n > 0, "mbedtls_pk_write_key_der failed on a valid RSA-2048 key");
  // The DER is written at the end of the buffer.
  std::string_view pkcs1(reinterpret_cast<const char*>(buf.data() + buf.size() - n), static_cast<std::size_t>(n));
  return WrapPkcs1InPkcs8(pkcs1);
}

std::string RsaKey::PublicSpkiDer() const {
  std::vector<unsigned char> buf(1024);
  int n = mbedtls_pk_write_pubkey_der(&state_->pk, buf.data(), buf.size());
  CAIRN_CHECK(n > 0, "mbedtls_pk_write_pubkey_der failed on a valid RSA-2048 key");
  return std::string(reinterpret_cast<const char*>(buf.data() + buf.size() - n), static_cast<std::size_t>(n));
}

Result<std::string> RsaKey::Sign(std::string_view message) const {
  CAIRN_CHECK(state_->has_private, "Sign with a public key");
  compat::Drbg drbg;
  if (int rc = drbg.Seed("cairn rsa sign"); rc != 0) return Status::Internal(MbedError("DRBG seed", rc));
  if (int rc = compat::RsaSetPssSha256(state_->rsa()); rc != 0) {
    return Status::Internal(MbedError("setting PSS padding", rc));
  }
  std::string hash = Sha256(message);
  std::string sig(kRsaSignatureSize, '\0');
  int rc = mbedtls_rsa_rsassa_pss_sign_ext(state_->rsa(), compat::Drbg::Random, drbg.ctx(), MBEDTLS_MD_SHA256,
                                           32, Bytes(hash), kPssSaltLength,
                                           reinterpret_cast<unsigned char*>(sig.data()));
  if (rc != 0) return Status::Internal(MbedError("RSA-PSS signing", rc));
  return sig;
}

Status RsaKey::Verify(std::string_view message, std::string_view signature) const {
  if (signature.size() != kRsaSignatureSize) {
    return Status::Integrity("an RSA-2048 signature is 256 bytes, not " + std::to_string(signature.size()));
  }
  std::string hash = Sha256(message);
  int rc = compat::RsaPssVerifySha256(state_->rsa(), Bytes(hash), kPssSaltLength, Bytes(signature));
  if (rc != 0) return Status::Integrity(MbedError("RSA-PSS signature check", rc));
  return Status::Ok();
}

namespace {

// Runs `work` off the loop and hands its Result to `done` on the loop.
template <typename T>
void OffLoop(Loop& loop, Callback<Result<T>()> work, Callback<void(Result<T>)> done) {
  auto slot = std::make_shared<std::optional<Result<T>>>();
  loop.Offload(
      [slot, work = std::move(work)]() mutable {
        slot->emplace(work());
        return Status::Ok();
      },
      [slot, done = std::move(done)](Status st) mutable {
        if (!st.ok()) {
          done(std::move(st));  // the pool refused the work (shutting down)
        } else {
          done(std::move(**slot));
        }
      });
}

}  // namespace

void GenerateRsaKeyOffLoop(Loop& loop, Callback<void(Result<RsaKey>)> done) {
  OffLoop<RsaKey>(loop, [] { return RsaKey::Generate(); }, std::move(done));
}

void SignOffLoop(Loop& loop, std::shared_ptr<const RsaKey> key, std::string message,
                 Callback<void(Result<std::string>)> done) {
  OffLoop<std::string>(
      loop, [key = std::move(key), message = std::move(message)] { return key->Sign(message); }, std::move(done));
}

}  // namespace cairn::crypto
