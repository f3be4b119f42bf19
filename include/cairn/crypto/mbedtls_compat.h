// The one place where cairn bridges mbedTLS 2.28 (Debian 12) and 3.6: every
// call whose signature differs between the two goes through a wrapper here,
// so an image can move to 3.6 by changing only src/crypto/mbedtls_compat.cc.
//
// This header names mbedTLS types, so unlike the other public headers it
// includes mbedTLS; include it only from .cc files. Any thread.
#pragma once

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include <cstddef>
#include <cstdint>

namespace cairn::crypto::compat {

// A CTR-DRBG seeded from the system's entropy source. Owns its state.
class Drbg {
 public:
  Drbg();
  ~Drbg();
  Drbg(const Drbg&) = delete;
  Drbg& operator=(const Drbg&) = delete;
  // 0 on success, else an mbedTLS error code.
  int Seed(const char* personalization);
  mbedtls_ctr_drbg_context* ctx() { return &drbg_; }
  // For mbedTLS f_rng parameters: (Drbg::Random, drbg.ctx()).
  static int Random(void* ctx, unsigned char* out, std::size_t len);

 private:
  mbedtls_entropy_context* entropy_;
  mbedtls_ctr_drbg_context drbg_;
};

// mbedtls_pk_parse_key: 3.x added the RNG arguments.
int PkParseKey(mbedtls_pk_context* pk, const unsigned char* key, std::size_t keylen, Drbg* drbg);

// mbedtls_x509write_crt_set_serial took an mbedtls_mpi in 2.x (deprecated in
// 3.x in favour of a raw byte string).
int X509SetSerial(mbedtls_x509write_cert* crt, const unsigned char* serial, std::size_t len);

// One-shot SHA-256: 2.28 names it mbedtls_sha256_ret (mbedtls_sha256 is a
// deprecated void wrapper there); 3.x names it mbedtls_sha256 returning int.
int Sha256(const unsigned char* data, std::size_t len, unsigned char out[32]);

// One-shot SHA-1 (2.28: mbedtls_sha1_ret; 3.x: mbedtls_sha1). Only for
// Tahoe's server permutation, which is defined with it.
int Sha1(const unsigned char* data, std::size_t len, unsigned char out[20]);

// Incremental SHA-256: 2.28's *_ret functions are plain names in 3.x.
int Sha256Starts(mbedtls_sha256_context* ctx);
int Sha256Update(mbedtls_sha256_context* ctx, const unsigned char* data, std::size_t len);
int Sha256Finish(mbedtls_sha256_context* ctx, unsigned char out[32]);

// Sets RSASSA-PSS with SHA-256 for the message digest and MGF1 (2.28's
// mbedtls_rsa_set_padding returns void, 3.x's an int).
int RsaSetPssSha256(mbedtls_rsa_context* rsa);

// RSASSA-PSS verification of a SHA-256 digest with MGF1-SHA-256 and an exact
// salt length (3.x dropped the RNG and mode arguments).
int RsaPssVerifySha256(mbedtls_rsa_context* rsa, const unsigned char hash[32], int salt_len,
                       const unsigned char* sig);

// mbedtls_pk_check_pair: 3.x added the RNG arguments. 0 if `priv` is the
// private half of `pub`.
int PkCheckPair(const mbedtls_pk_context* pub, const mbedtls_pk_context* priv, Drbg* drbg);

// The certificate's DER SubjectPublicKeyInfo.
void CertSpkiDer(const mbedtls_x509_crt* crt, const unsigned char** der, std::size_t* len);

// The DER bytes a successful mbedtls_pem_read_buffer decoded (3.x added
// mbedtls_pem_get_buffer; 2.28 has only the fields).
const unsigned char* PemDer(const mbedtls_pem_context* pem, std::size_t* len);

// Restricts a TLS configuration to TLS 1.2 and later (2.28: major/minor
// numbers; 3.x: mbedtls_ssl_conf_min_tls_version).
void SslConfMinTls12(mbedtls_ssl_config* conf);

// Sets the ECDHE groups, in preference order: X25519, P-256, P-384. Without
// it, mbedTLS 2.28 offers and accepts its default list, which starts with
// P-521 (a client that offers that first gets it: several times the cost of
// a P-256 exchange per handshake). 2.28: mbedtls_ssl_conf_curves with ECP
// group ids; 3.x: mbedtls_ssl_conf_groups with TLS group numbers.
void SslConfGroups(mbedtls_ssl_config* conf);

// The TLS 1.2 secrets of one finished handshake, as the key export gives
// them: enough to derive the record keys (RFC 5246 6.3).
struct Tls12Secrets {
  bool have = false;
  unsigned char master[48];
  unsigned char client_random[32];
  unsigned char server_random[32];
  int prf_type = 0;  // an mbedtls_tls_prf_types value
};

// Installs the key-export hook on a configuration (2.28: the configuration's
// export callback, which writes to the Tls12Secrets of the KeyExportScope
// active on this thread; 3.6: nothing, the hook is per session).
void SslConfKeyExport(mbedtls_ssl_config* conf);
// Arranges for the secrets of a TLS 1.2 handshake on `ssl` to be written to
// `*secrets` (3.6: mbedtls_ssl_set_export_keys_cb; 2.28: nothing, see
// KeyExportScope). `secrets` must outlive the session.
void SslSetKeyExport(mbedtls_ssl_context* ssl, Tls12Secrets* secrets);

// Held around every mbedtls_ssl_handshake call on a session: 2.28's export
// callback has no session argument, so it writes to the secrets of the scope
// active on the calling thread. 3.6: does nothing. Scopes do not nest.
class KeyExportScope {
 public:
  explicit KeyExportScope(Tls12Secrets* secrets);
  ~KeyExportScope();
  KeyExportScope(const KeyExportScope&) = delete;
  KeyExportScope& operator=(const KeyExportScope&) = delete;
};

// The TLS 1.2 key block (RFC 5246 6.3): PRF(master, "key expansion",
// server_random + client_random), `len` bytes. 0 or an mbedTLS error.
int Tls12KeyBlock(const Tls12Secrets& secrets, unsigned char* out, std::size_t len);

// The sequence numbers of the next record each direction will carry, read
// from the session's record counters after its handshake.
void SslRecordCounters(const mbedtls_ssl_context* ssl, std::uint64_t* in_seq, std::uint64_t* out_seq);

// True if the session negotiated TLS 1.3 (never with 2.28).
bool SslIsTls13(const mbedtls_ssl_context* ssl);

}  // namespace cairn::crypto::compat
