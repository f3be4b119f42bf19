// The node's TLS identity: an ECDSA P-256 key and a self-signed certificate
// (docs/architecture.md says why P-256: a Tahoe-LAFS client's OpenSSL accepts
// it at SECLEVEL 2, mbedTLS 2.28 can create it, and ECDHE-ECDSA handshakes
// are far cheaper on ARM than RSA-2048 signing), and the SPKI hash that
// names the node. Any thread; key generation takes milliseconds.
#pragma once

#include <cstddef>
#include <string>

#include "cairn/core/status.h"

namespace cairn::tls {

struct Identity {
  std::string key_pem;   // PKCS#8/SEC1 PEM private key
  std::string cert_pem;  // self-signed X.509 certificate, PEM
};

// A new key and self-signed certificate (CN=cairn, SHA-256 signature).
Result<Identity> GenerateIdentity();

// URL-safe base64 (no '=') of SHA-256 over the certificate's DER
// SubjectPublicKeyInfo: the NURL's pin and the node id. 43 characters.
Result<std::string> SpkiHashOfCertPem(const std::string& cert_pem);

// The DER SubjectPublicKeyInfo of a PEM certificate, whatever its key type
// (found in the ASN.1 without parsing the whole certificate).
Result<std::string> SpkiDerOfCertPem(const std::string& cert_pem);

// The same hash over a DER SubjectPublicKeyInfo already extracted.
std::string SpkiHashOfSpkiDer(const unsigned char* der, std::size_t len);

// `n` random bytes from the system's entropy, URL-safe base64 without '='.
Result<std::string> RandomUrlSafeToken(std::size_t n);

}  // namespace cairn::tls
