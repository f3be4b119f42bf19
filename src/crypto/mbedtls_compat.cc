// mbedTLS 2.28 implementations of the compatibility wrappers. Any thread.
#include "cairn/crypto/mbedtls_compat.h"

#include <mbedtls/bignum.h>
#include <mbedtls/entropy.h>
#include <mbedtls/sha1.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

#include <cstring>

namespace cairn::crypto::compat {

Drbg::Drbg() : entropy_(new mbedtls_entropy_context) {
  mbedtls_entropy_init(entropy_);
  mbedtls_ctr_drbg_init(&drbg_);
}

Drbg::~Drbg() {
  mbedtls_ctr_drbg_free(&drbg_);
  mbedtls_entropy_free(entropy_);
  delete entropy_;
}

int Drbg::Seed(const char* personalization) {
  return mbedtls_ctr_drbg_seed(&drbg_, mbedtls_entropy_func, entropy_,
                               reinterpret_cast<const unsigned char*>(personalization),
                               std::strlen(personalization));
}

int Drbg::Random(void* ctx, unsigned char* out, std::size_t len) { return mbedtls_ctr_drbg_random(ctx, out, len); }

int PkParseKey(mbedtls_pk_context* pk, const unsigned char* key, std::size_t keylen, Drbg* drbg) {
#if MBEDTLS_VERSION_MAJOR >= 3
  return mbedtls_pk_parse_key(pk, key, keylen, nullptr, 0, Drbg::Random, drbg->ctx());
#else
  (void)drbg;
  return mbedtls_pk_parse_key(pk, key, keylen, nullptr, 0);
#endif
}

int X509SetSerial(mbedtls_x509write_cert* crt, const unsigned char* serial, std::size_t len) {
#if MBEDTLS_VERSION_MAJOR >= 3
  return mbedtls_x509write_crt_set_serial_raw(crt, const_cast<unsigned char*>(serial), len);
#else
  mbedtls_mpi mpi;
  mbedtls_mpi_init(&mpi);
  int rc = mbedtls_mpi_read_binary(&mpi, serial, len);
  if (rc == 0) rc = mbedtls_x509write_crt_set_serial(crt, &mpi);
  mbedtls_mpi_free(&mpi);
  return rc;
#endif
}

int Sha256(const unsigned char* data, std::size_t len, unsigned char out[32]) {
#if MBEDTLS_VERSION_MAJOR >= 3
  return mbedtls_sha256(data, len, out, 0);
#else
  return mbedtls_sha256_ret(data, len, out, 0);
#endif
}

int Sha1(const unsigned char* data, std::size_t len, unsigned char out[20]) {
#if MBEDTLS_VERSION_MAJOR >= 3
  return mbedtls_sha1(data, len, out);
#else
  return mbedtls_sha1_ret(data, len, out);
#endif
}

int Sha256Starts(mbedtls_sha256_context* ctx) {
#if MBEDTLS_VERSION_MAJOR >= 3
  return mbedtls_sha256_starts(ctx, 0);
#else
  return mbedtls_sha256_starts_ret(ctx, 0);
#endif
}

int Sha256Update(mbedtls_sha256_context* ctx, const unsigned char* data, std::size_t len) {
#if MBEDTLS_VERSION_MAJOR >= 3
  return mbedtls_sha256_update(ctx, data, len);
#else
  return mbedtls_sha256_update_ret(ctx, data, len);
#endif
}

int Sha256Finish(mbedtls_sha256_context* ctx, unsigned char out[32]) {
#if MBEDTLS_VERSION_MAJOR >= 3
  return mbedtls_sha256_finish(ctx, out);
#else
  return mbedtls_sha256_finish_ret(ctx, out);
#endif
}

int RsaSetPssSha256(mbedtls_rsa_context* rsa) {
#if MBEDTLS_VERSION_MAJOR >= 3
  return mbedtls_rsa_set_padding(rsa, MBEDTLS_RSA_PKCS_V21, MBEDTLS_MD_SHA256);
#else
  mbedtls_rsa_set_padding(rsa, MBEDTLS_RSA_PKCS_V21, MBEDTLS_MD_SHA256);
  return 0;
#endif
}

int RsaPssVerifySha256(mbedtls_rsa_context* rsa, const unsigned char hash[32], int salt_len,
                       const unsigned char* sig) {
#if MBEDTLS_VERSION_MAJOR >= 3
  return mbedtls_rsa_rsassa_pss_verify_ext(rsa, MBEDTLS_MD_SHA256, 32, hash, MBEDTLS_MD_SHA256, salt_len, sig);
#else
  return mbedtls_rsa_rsassa_pss_verify_ext(rsa, nullptr, nullptr, MBEDTLS_RSA_PUBLIC, MBEDTLS_MD_SHA256, 32, hash,
                                           MBEDTLS_MD_SHA256, salt_len, sig);
#endif
}

int PkCheckPair(const mbedtls_pk_context* pub, const mbedtls_pk_context* priv, Drbg* drbg) {
#if MBEDTLS_VERSION_MAJOR >= 3
  return mbedtls_pk_check_pair(pub, priv, Drbg::Random, drbg->ctx());
#else
  (void)drbg;
  return mbedtls_pk_check_pair(pub, priv);
#endif
}

const unsigned char* PemDer(const mbedtls_pem_context* pem, std::size_t* len) {
#if MBEDTLS_VERSION_MAJOR >= 3
  return mbedtls_pem_get_buffer(const_cast<mbedtls_pem_context*>(pem), len);
#else
  *len = pem->buflen;
  return pem->buf;
#endif
}

void CertSpkiDer(const mbedtls_x509_crt* crt, const unsigned char** der, std::size_t* len) {
  // A public field in both 2.28 and 3.6.
  *der = crt->pk_raw.p;
  *len = crt->pk_raw.len;
}

void SslConfMinTls12(mbedtls_ssl_config* conf) {
#if MBEDTLS_VERSION_MAJOR >= 3
  mbedtls_ssl_conf_min_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_2);
#else
  mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
#endif
}

void SslConfGroups(mbedtls_ssl_config* conf) {
#if MBEDTLS_VERSION_MAJOR >= 3
  static const std::uint16_t kGroups[] = {MBEDTLS_SSL_IANA_TLS_GROUP_X25519, MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1,
                                          MBEDTLS_SSL_IANA_TLS_GROUP_SECP384R1, MBEDTLS_SSL_IANA_TLS_GROUP_NONE};
  mbedtls_ssl_conf_groups(conf, kGroups);
#else
  static const mbedtls_ecp_group_id kGroups[] = {MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1,
                                                 MBEDTLS_ECP_DP_SECP384R1, MBEDTLS_ECP_DP_NONE};
  mbedtls_ssl_conf_curves(conf, kGroups);
#endif
}

namespace {

thread_local Tls12Secrets* g_export_target = nullptr;

#if MBEDTLS_VERSION_MAJOR >= 3
void ExportKeys(void* p, mbedtls_ssl_key_export_type type, const unsigned char* secret, std::size_t secret_len,
                const unsigned char client_random[32], const unsigned char server_random[32],
                mbedtls_tls_prf_types prf_type) {
  auto* out = static_cast<Tls12Secrets*>(p);
  if (type != MBEDTLS_SSL_KEY_EXPORT_TLS12_MASTER_SECRET || secret_len != sizeof out->master) return;
  std::memcpy(out->master, secret, sizeof out->master);
  std::memcpy(out->client_random, client_random, 32);
  std::memcpy(out->server_random, server_random, 32);
  out->prf_type = prf_type;
  out->have = true;
}
#else
int ExportKeysExt(void*, const unsigned char* ms, const unsigned char*, std::size_t, std::size_t, std::size_t,
                  const unsigned char client_random[32], const unsigned char server_random[32],
                  mbedtls_tls_prf_types prf_type) {
  Tls12Secrets* out = g_export_target;
  if (out == nullptr) return 0;
  std::memcpy(out->master, ms, sizeof out->master);
  std::memcpy(out->client_random, client_random, 32);
  std::memcpy(out->server_random, server_random, 32);
  out->prf_type = prf_type;
  out->have = true;
  return 0;
}
#endif

}  // namespace

void SslConfKeyExport(mbedtls_ssl_config* conf) {
#if MBEDTLS_VERSION_MAJOR >= 3
  (void)conf;
#else
  mbedtls_ssl_conf_export_keys_ext_cb(conf, ExportKeysExt, nullptr);
#endif
}

void SslSetKeyExport(mbedtls_ssl_context* ssl, Tls12Secrets* secrets) {
#if MBEDTLS_VERSION_MAJOR >= 3
  mbedtls_ssl_set_export_keys_cb(ssl, ExportKeys, secrets);
#else
  (void)ssl;
  (void)secrets;
#endif
}

KeyExportScope::KeyExportScope(Tls12Secrets* secrets) { g_export_target = secrets; }
KeyExportScope::~KeyExportScope() { g_export_target = nullptr; }

int Tls12KeyBlock(const Tls12Secrets& secrets, unsigned char* out, std::size_t len) {
  unsigned char seed[64];
  std::memcpy(seed, secrets.server_random, 32);
  std::memcpy(seed + 32, secrets.client_random, 32);
  return mbedtls_ssl_tls_prf(static_cast<mbedtls_tls_prf_types>(secrets.prf_type), secrets.master,
                             sizeof secrets.master, "key expansion", seed, sizeof seed, out, len);
}

namespace {

std::uint64_t Counter(const unsigned char* c) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | c[i];
  return v;
}

}  // namespace

void SslRecordCounters(const mbedtls_ssl_context* ssl, std::uint64_t* in_seq, std::uint64_t* out_seq) {
#if MBEDTLS_VERSION_MAJOR >= 3
  *in_seq = Counter(ssl->MBEDTLS_PRIVATE(in_ctr));
  *out_seq = Counter(ssl->MBEDTLS_PRIVATE(cur_out_ctr));
#else
  *in_seq = Counter(ssl->in_ctr);
  *out_seq = Counter(ssl->cur_out_ctr);
#endif
}

bool SslIsTls13(const mbedtls_ssl_context* ssl) {
#if MBEDTLS_VERSION_MAJOR >= 3
  return mbedtls_ssl_get_version_number(ssl) == MBEDTLS_SSL_VERSION_TLS1_3;
#else
  (void)ssl;
  return false;
#endif
}

}  // namespace cairn::crypto::compat
