// Node key, self-signed certificate and SPKI hash with mbedTLS. Any thread.
#include "cairn/tls/identity.h"

#include <mbedtls/asn1.h>
#include <mbedtls/base64.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/x509_crt.h>

#include <cstdio>
#include <vector>

#include "cairn/crypto/base64.h"
#include "cairn/crypto/mbedtls_compat.h"
#include "cairn/crypto/random.h"

namespace cairn::tls {
namespace {

Status MbedError(const char* what, int rc) {
  return Status::Internal(std::string(what) + " failed (mbedTLS error -0x" +
                          [&] {
                            char b[16];
                            std::snprintf(b, sizeof b, "%04x", static_cast<unsigned>(-rc));
                            return std::string(b);
                          }() +
                          ")");
}


}  // namespace

Result<Identity> GenerateIdentity() {
  crypto::compat::Drbg drbg;
  int rc = drbg.Seed("cairn node identity");
  if (rc != 0) return MbedError("seeding the DRBG", rc);

  mbedtls_pk_context key;
  mbedtls_pk_init(&key);
  mbedtls_x509write_cert crt;
  mbedtls_x509write_crt_init(&crt);
  Identity id;
  std::vector<unsigned char> buf(4096);
  unsigned char serial[16];
  Status st;
  do {
    if ((rc = mbedtls_pk_setup(&key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY))) != 0) {
      st = MbedError("pk_setup", rc);
      break;
    }
    if ((rc = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(key), crypto::compat::Drbg::Random,
                                  drbg.ctx())) != 0) {
      st = MbedError("P-256 key generation", rc);
      break;
    }
    if ((rc = mbedtls_pk_write_key_pem(&key, buf.data(), buf.size())) != 0) {
      st = MbedError("writing the key", rc);
      break;
    }
    id.key_pem = reinterpret_cast<char*>(buf.data());

    mbedtls_x509write_crt_set_version(&crt, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&crt, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&crt, &key);
    mbedtls_x509write_crt_set_issuer_key(&crt, &key);
    if ((rc = mbedtls_x509write_crt_set_subject_name(&crt, "CN=cairn")) != 0 ||
        (rc = mbedtls_x509write_crt_set_issuer_name(&crt, "CN=cairn")) != 0) {
      st = MbedError("certificate names", rc);
      break;
    }
    if ((rc = drbg.Random(drbg.ctx(), serial, sizeof serial)) != 0) {
      st = MbedError("serial", rc);
      break;
    }
    serial[0] &= 0x7f;  // a positive INTEGER
    serial[0] |= 0x01;  // and not zero-led
    if ((rc = crypto::compat::X509SetSerial(&crt, serial, sizeof serial)) != 0) {
      st = MbedError("serial", rc);
      break;
    }
    // Tahoe-LAFS clients ignore validity dates; these span any device's life.
    if ((rc = mbedtls_x509write_crt_set_validity(&crt, "20250101000000", "20991231235959")) != 0) {
      st = MbedError("validity", rc);
      break;
    }
    if ((rc = mbedtls_x509write_crt_pem(&crt, buf.data(), buf.size(), crypto::compat::Drbg::Random, drbg.ctx())) !=
        0) {
      st = MbedError("signing the certificate", rc);
      break;
    }
    id.cert_pem = reinterpret_cast<char*>(buf.data());
  } while (false);
  mbedtls_platform_zeroize(buf.data(), buf.size());
  mbedtls_x509write_crt_free(&crt);
  mbedtls_pk_free(&key);
  if (!st.ok()) return st;
  return id;
}

std::string SpkiHashOfSpkiDer(const unsigned char* der, std::size_t len) {
  unsigned char digest[32];
  CAIRN_CHECK(crypto::compat::Sha256(der, len, digest) == 0, "SHA-256 cannot fail on a buffer");
  return crypto::Base64UrlNoPadEncode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

namespace {

// The SubjectPublicKeyInfo element of a DER certificate, found by walking
// the ASN.1 rather than by parsing the whole certificate: mbedTLS 2.28
// cannot parse certificates with Ed25519 keys, whose SPKI hashes a Tahoe
// client may still present.
Result<std::string> SpkiOfCertDer(const unsigned char* der, std::size_t len) {
  unsigned char* p = const_cast<unsigned char*>(der);
  const unsigned char* end = der + len;
  std::size_t n;
  const int seq = MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE;
  auto enter = [&](int tag) { return mbedtls_asn1_get_tag(&p, end, &n, tag) == 0; };
  auto skip = [&](int tag) {
    if (mbedtls_asn1_get_tag(&p, end, &n, tag) != 0) return false;
    p += n;
    return true;
  };
  if (!enter(seq) || !enter(seq)) return Status::InvalidArgument("not an X.509 certificate");  // Certificate, TBS
  end = p + n;
  // [0] EXPLICIT version (absent in v1 certificates), serial, signature
  // algorithm, issuer, validity, subject, then the SubjectPublicKeyInfo.
  if (p < end && *p == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 0)) {
    if (!skip(MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 0)) {
      return Status::InvalidArgument("bad certificate version");
    }
  }
  if (!skip(MBEDTLS_ASN1_INTEGER) || !skip(seq) || !skip(seq) || !skip(seq) || !skip(seq)) {
    return Status::InvalidArgument("truncated certificate");
  }
  unsigned char* spki = p;
  if (!skip(seq)) return Status::InvalidArgument("certificate has no SubjectPublicKeyInfo");
  return std::string(reinterpret_cast<const char*>(spki), static_cast<std::size_t>(p - spki));
}

}  // namespace

Result<std::string> SpkiDerOfCertPem(const std::string& cert_pem) {
  mbedtls_pem_context pem;
  mbedtls_pem_init(&pem);
  std::size_t used = 0;
  int rc = mbedtls_pem_read_buffer(&pem, "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----",
                                   reinterpret_cast<const unsigned char*>(cert_pem.c_str()), nullptr, 0, &used);
  if (rc != 0) {
    mbedtls_pem_free(&pem);
    return Status::InvalidArgument("not a PEM certificate");
  }
  std::size_t der_len = 0;
  const unsigned char* der = crypto::compat::PemDer(&pem, &der_len);
  auto spki = SpkiOfCertDer(der, der_len);
  mbedtls_pem_free(&pem);
  return spki;
}

Result<std::string> SpkiHashOfCertPem(const std::string& cert_pem) {
  CAIRN_TRY_ASSIGN(std::string spki, SpkiDerOfCertPem(cert_pem));
  return SpkiHashOfSpkiDer(reinterpret_cast<const unsigned char*>(spki.data()), spki.size());
}

Result<std::string> RandomUrlSafeToken(std::size_t n) {
  CAIRN_TRY_ASSIGN(std::string bytes, crypto::RandomBytes(n));
  return crypto::Base64UrlNoPadEncode(bytes);
}

}  // namespace cairn::tls
