// TLS contexts and sessions over mbedTLS with in-memory transport buffers.
// Loop thread only; nothing here blocks.
#include "cairn/tls/session.h"

#include <mbedtls/error.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ciphersuites.h>
#include <mbedtls/x509_crt.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "cairn/crypto/aead.h"
#include "cairn/crypto/mbedtls_compat.h"
#include "cairn/tls/identity.h"
#include "tls/own_records.h"

namespace cairn::tls {
namespace {

std::string MbedText(int rc) {
  char buf[128];
  mbedtls_strerror(rc, buf, sizeof buf);
  return buf;
}

std::atomic<bool> g_own_records{true};

}  // namespace

void SetOwnRecords(bool on) { g_own_records = on; }

bool OwnRecordsDefault() {
  const char* env = std::getenv("CAIRN_TLS_OWN_RECORDS");
  if (env != nullptr && (env[0] == '0' || env[0] == '1') && env[1] == '\0') return env[0] == '1';
  return g_own_records;
}

struct Context::Impl {
  bool server = false;
  bool own_records = OwnRecordsDefault();
  mbedtls_ssl_config conf;
  mbedtls_x509_crt cert;
  mbedtls_pk_context key;
  crypto::compat::Drbg drbg;
  int suites[4] = {0, 0, 0, 0};  // must outlive conf

  Impl() {
    mbedtls_ssl_config_init(&conf);
    mbedtls_x509_crt_init(&cert);
    mbedtls_pk_init(&key);
  }
  ~Impl() {
    mbedtls_ssl_config_free(&conf);
    mbedtls_x509_crt_free(&cert);
    mbedtls_pk_free(&key);
  }
};

Context::Context() : impl_(std::make_unique<Impl>()) {}
Context::~Context() = default;

void Context::set_own_records(bool on) { impl_->own_records = on; }
bool Context::own_records() const { return impl_->own_records; }

Result<std::shared_ptr<Context>> Context::NewServer(const ServerOptions& options) {
  std::shared_ptr<Context> ctx(new Context());
  Impl& im = *ctx->impl_;
  im.server = true;
  int rc = im.drbg.Seed("cairn tls server");
  if (rc != 0) return Status::Internal("seeding the DRBG: " + MbedText(rc));
  rc = mbedtls_x509_crt_parse(&im.cert, reinterpret_cast<const unsigned char*>(options.cert_pem.c_str()),
                              options.cert_pem.size() + 1);
  if (rc != 0) return Status::InvalidArgument("node certificate: " + MbedText(rc));
  rc = crypto::compat::PkParseKey(&im.key, reinterpret_cast<const unsigned char*>(options.key_pem.c_str()),
                                  options.key_pem.size() + 1, &im.drbg);
  if (rc != 0) return Status::InvalidArgument("node key: " + MbedText(rc));
  if ((rc = crypto::compat::PkCheckPair(&im.cert.pk, &im.key, &im.drbg)) != 0) {
    return Status::InvalidArgument("node key does not match its certificate: " + MbedText(rc));
  }
  rc = mbedtls_ssl_config_defaults(&im.conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                   MBEDTLS_SSL_PRESET_DEFAULT);
  if (rc != 0) return Status::Internal("TLS defaults: " + MbedText(rc));
  mbedtls_ssl_conf_rng(&im.conf, crypto::compat::Drbg::Random, im.drbg.ctx());
  crypto::compat::SslConfMinTls12(&im.conf);
  crypto::compat::SslConfGroups(&im.conf);
  crypto::compat::SslConfKeyExport(&im.conf);
  // The server's order decides. Without AES instructions ChaCha20-Poly1305
  // is several times faster than AES-GCM in software.
  const int aes = MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256;
  const int chacha = MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256;
  im.suites[0] = options.prefer_chacha ? chacha : aes;
  im.suites[1] = options.prefer_chacha ? aes : chacha;
  im.suites[2] = MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384;
  mbedtls_ssl_conf_ciphersuites(&im.conf, im.suites);
  rc = mbedtls_ssl_conf_own_cert(&im.conf, &im.cert, &im.key);
  if (rc != 0) return Status::InvalidArgument("node key does not match its certificate: " + MbedText(rc));
  return ctx;
}

namespace {

// Accepts the chain only if the leaf's SPKI hash equals the pin; every other
// verification result (self-signed, dates, names) is irrelevant to a pin.
int VerifyPin(void* pin_ptr, mbedtls_x509_crt* crt, int depth, uint32_t* flags) {
  const std::string& pin = *static_cast<const std::string*>(pin_ptr);
  if (depth != 0) {
    *flags |= MBEDTLS_X509_BADCERT_NOT_TRUSTED;  // exactly one certificate is expected
    return 0;
  }
  const unsigned char* der;
  std::size_t len;
  crypto::compat::CertSpkiDer(crt, &der, &len);
  *flags = SpkiHashOfSpkiDer(der, len) == pin ? 0 : MBEDTLS_X509_BADCERT_NOT_TRUSTED;
  return 0;
}

}  // namespace

Result<std::shared_ptr<Context>> Context::NewClient() {
  std::shared_ptr<Context> ctx(new Context());
  Impl& im = *ctx->impl_;
  int rc = im.drbg.Seed("cairn tls client");
  if (rc != 0) return Status::Internal("seeding the DRBG: " + MbedText(rc));
  rc = mbedtls_ssl_config_defaults(&im.conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                   MBEDTLS_SSL_PRESET_DEFAULT);
  if (rc != 0) return Status::Internal("TLS defaults: " + MbedText(rc));
  mbedtls_ssl_conf_rng(&im.conf, crypto::compat::Drbg::Random, im.drbg.ctx());
  crypto::compat::SslConfMinTls12(&im.conf);
  crypto::compat::SslConfGroups(&im.conf);
  crypto::compat::SslConfKeyExport(&im.conf);
  mbedtls_ssl_conf_authmode(&im.conf, MBEDTLS_SSL_VERIFY_REQUIRED);
  // Pinning replaces the CA chain; an empty chain makes mbedTLS report
  // "not trusted", which the per-session verify callback then decides.
  mbedtls_ssl_conf_ca_chain(&im.conf, &im.cert, nullptr);
  return ctx;
}

struct Session::Impl {
  std::shared_ptr<Context> ctx;
  mbedtls_ssl_context ssl;
  std::string in;   // received, not yet consumed by mbedTLS
  std::size_t in_off = 0;
  std::string out;  // produced by mbedTLS, not yet taken
  std::string pin;
  bool handshake_done = false;
  crypto::compat::Tls12Secrets secrets;

  Impl() { mbedtls_ssl_init(&ssl); }
  ~Impl() { mbedtls_ssl_free(&ssl); }

  static int Send(void* p, const unsigned char* buf, size_t len) {
    static_cast<Impl*>(p)->out.append(reinterpret_cast<const char*>(buf), len);
    return static_cast<int>(len);
  }
  static int Recv(void* p, unsigned char* buf, size_t len) {
    auto* self = static_cast<Impl*>(p);
    std::size_t avail = self->in.size() - self->in_off;
    if (avail == 0) return MBEDTLS_ERR_SSL_WANT_READ;
    std::size_t n = len < avail ? len : avail;
    std::memcpy(buf, self->in.data() + self->in_off, n);
    self->in_off += n;
    if (self->in_off == self->in.size()) {
      self->in.clear();
      self->in_off = 0;
    }
    return static_cast<int>(n);
  }
};

Session::Session() : impl_(std::make_unique<Impl>()) {}
Session::~Session() = default;

Result<std::unique_ptr<Session>> Session::NewServer(std::shared_ptr<Context> ctx) {
  std::unique_ptr<Session> s(new Session());
  s->impl_->ctx = std::move(ctx);
  int rc = mbedtls_ssl_setup(&s->impl_->ssl, &s->impl_->ctx->impl()->conf);
  if (rc != 0) return Status::Internal("TLS setup: " + MbedText(rc));
  crypto::compat::SslSetKeyExport(&s->impl_->ssl, &s->impl_->secrets);
  mbedtls_ssl_set_bio(&s->impl_->ssl, s->impl_.get(), Impl::Send, Impl::Recv, nullptr);
  return s;
}

Result<std::unique_ptr<Session>> Session::NewClient(std::shared_ptr<Context> ctx, std::string spki_pin) {
  std::unique_ptr<Session> s(new Session());
  Impl& im = *s->impl_;
  im.ctx = std::move(ctx);
  im.pin = std::move(spki_pin);
  int rc = mbedtls_ssl_setup(&im.ssl, &im.ctx->impl()->conf);
  if (rc != 0) return Status::Internal("TLS setup: " + MbedText(rc));
  mbedtls_ssl_set_verify(&im.ssl, VerifyPin, &im.pin);
  crypto::compat::SslSetKeyExport(&im.ssl, &im.secrets);
  mbedtls_ssl_set_bio(&im.ssl, &im, Impl::Send, Impl::Recv, nullptr);
  return s;
}

void Session::Feed(std::string_view ciphertext) { impl_->in.append(ciphertext); }

Status Session::Handshake(bool* done) {
  *done = impl_->handshake_done;
  if (*done) return Status();
  int rc;
  {
    crypto::compat::KeyExportScope scope(&impl_->secrets);
    rc = mbedtls_ssl_handshake(&impl_->ssl);
  }
  if (rc == 0) {
    impl_->handshake_done = *done = true;
    return Status();
  }
  if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) return Status();
  if (rc == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
    return Status::Unauthenticated("the server's certificate does not match the pinned SPKI hash");
  }
  return Status::Unavailable("TLS handshake failed: " + MbedText(rc));
}

Status Session::Read(std::string* out, bool* eof) {
  *eof = false;
  unsigned char buf[16384];
  for (;;) {
    int rc = mbedtls_ssl_read(&impl_->ssl, buf, sizeof buf);
    if (rc > 0) {
      out->append(reinterpret_cast<char*>(buf), static_cast<std::size_t>(rc));
      continue;
    }
    if (rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
      *eof = true;
      return Status();
    }
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) return Status();
    return Status::Integrity("TLS record: " + MbedText(rc));
  }
}

Status Session::Write(std::string_view plaintext) {
  CAIRN_CHECK(impl_->handshake_done, "TLS Write before the handshake finished");
  std::size_t off = 0;
  while (off < plaintext.size()) {
    int rc = mbedtls_ssl_write(&impl_->ssl, reinterpret_cast<const unsigned char*>(plaintext.data() + off),
                               plaintext.size() - off);
    if (rc < 0) return Status::IoError("TLS write: " + MbedText(rc));
    off += static_cast<std::size_t>(rc);
  }
  return Status();
}

void Session::Close() { mbedtls_ssl_close_notify(&impl_->ssl); }

std::string Session::TakeOutgoing() {
  std::string out;
  out.swap(impl_->out);
  return out;
}

bool Session::has_outgoing() const { return !impl_->out.empty(); }

std::string Session::ciphersuite() const {
  const char* name = mbedtls_ssl_get_ciphersuite(&impl_->ssl);
  return name ? name : "";
}

std::string Session::peer_spki() const {
  const mbedtls_x509_crt* crt = mbedtls_ssl_get_peer_cert(&impl_->ssl);
  if (!crt) return "";
  const unsigned char* der;
  std::size_t len;
  crypto::compat::CertSpkiDer(crt, &der, &len);
  return SpkiHashOfSpkiDer(der, len);
}

bool Session::own_records_wanted() const { return impl_->ctx->own_records(); }

namespace {

struct SuiteKeys {
  int id;
  crypto::AeadAlgorithm algorithm;
  std::size_t iv_len;  // the implicit part: GCM's 4-byte salt, ChaCha20-Poly1305's 12-byte IV
};

// The TLS 1.2 AEAD suites cairn seals and opens itself (RFC 5288, 5289,
// 7905); any other keeps mbedTLS's records.
constexpr SuiteKeys kSuites[] = {
    {MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, crypto::AeadAlgorithm::kAes128Gcm, 4},
    {MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, crypto::AeadAlgorithm::kAes128Gcm, 4},
    {MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, crypto::AeadAlgorithm::kAes256Gcm, 4},
    {MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, crypto::AeadAlgorithm::kAes256Gcm, 4},
    {MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, crypto::AeadAlgorithm::kChaCha20Poly1305, 12},
    {MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, crypto::AeadAlgorithm::kChaCha20Poly1305, 12},
};

}  // namespace

Status Session::ExportRecordKeys(RecordKeys* keys) const {
  const Impl& im = *impl_;
  if (!im.handshake_done) return Status::FailedPrecondition("the handshake has not finished");
  if (crypto::compat::SslIsTls13(&im.ssl)) return Status::FailedPrecondition("TLS 1.3 keeps mbedTLS's records");
  const char* name = mbedtls_ssl_get_ciphersuite(&im.ssl);
  int id = name ? mbedtls_ssl_get_ciphersuite_id(name) : 0;
  const SuiteKeys* suite = nullptr;
  for (const SuiteKeys& s : kSuites) {
    if (s.id == id) suite = &s;
  }
  if (suite == nullptr) return Status::FailedPrecondition(std::string("suite ") + (name ? name : "?") + " keeps mbedTLS's records");
  if (!im.secrets.have) return Status::FailedPrecondition("mbedTLS exported no secrets");
  // mbedTLS reads a stream record by record (its header, then exactly its
  // length), so after its last handshake record it holds nothing unread;
  // should it ever, those bytes are its to open.
  if (mbedtls_ssl_check_pending(&im.ssl) != 0 || mbedtls_ssl_get_bytes_avail(&im.ssl) != 0) {
    return Status::FailedPrecondition("mbedTLS holds input it has not processed");
  }
  std::size_t key_len = crypto::AeadKeySize(suite->algorithm);
  // RFC 5246 6.3: client write key, server write key, client IV, server IV
  // (AEAD suites have no MAC keys).
  unsigned char block[2 * 32 + 2 * 12];
  std::size_t block_len = 2 * key_len + 2 * suite->iv_len;
  int rc = crypto::compat::Tls12KeyBlock(im.secrets, block, block_len);
  if (rc != 0) return Status::Internal("TLS key block: " + MbedText(rc));
  auto part = [&](std::size_t off, std::size_t len) { return std::string(reinterpret_cast<char*>(block) + off, len); };
  std::string client_key = part(0, key_len), server_key = part(key_len, key_len);
  std::string client_iv = part(2 * key_len, suite->iv_len), server_iv = part(2 * key_len + suite->iv_len, suite->iv_len);
  mbedtls_platform_zeroize(block, sizeof block);
  bool server = im.ctx->impl()->server;
  keys->algorithm = suite->algorithm;
  keys->write_key = server ? server_key : client_key;
  keys->read_key = server ? client_key : server_key;
  keys->write_iv = server ? server_iv : client_iv;
  keys->read_iv = server ? client_iv : server_iv;
  crypto::compat::SslRecordCounters(&im.ssl, &keys->read_seq, &keys->write_seq);
  return Status();
}

std::string Session::TakeUnconsumed() {
  std::string rest = impl_->in.substr(impl_->in_off);
  impl_->in.clear();
  impl_->in_off = 0;
  return rest;
}

}  // namespace cairn::tls
