// TLS contexts and sessions over mbedTLS with in-memory transport buffers.
// Loop thread only; nothing here blocks.
#include "cairn/tls/session.h"

#include <mbedtls/error.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ciphersuites.h>
#include <mbedtls/x509_crt.h>

#include <cstring>

#include "cairn/crypto/mbedtls_compat.h"
#include "cairn/tls/identity.h"

namespace cairn::tls {
namespace {

std::string MbedText(int rc) {
  char buf[128];
  mbedtls_strerror(rc, buf, sizeof buf);
  return buf;
}

}  // namespace

struct Context::Impl {
  bool server = false;
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
  mbedtls_ssl_set_bio(&im.ssl, &im, Impl::Send, Impl::Recv, nullptr);
  return s;
}

void Session::Feed(std::string_view ciphertext) { impl_->in.append(ciphertext); }

Status Session::Handshake(bool* done) {
  *done = impl_->handshake_done;
  if (*done) return Status();
  int rc = mbedtls_ssl_handshake(&impl_->ssl);
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

}  // namespace cairn::tls
