// TLS sessions as transport-free state machines over mbedTLS: the caller
// feeds the bytes it received from the peer and sends the bytes the session
// produces, so the same engine runs over a libuv socket, in a test, or in a
// fuzzer, and nothing here ever blocks or calls back. Loop thread only (one
// session is used by one thread).
//
// Server: the node's key and self-signed certificate; TLS 1.2 and later;
// ECDHE-ECDSA with AES-GCM first, or ChaCha20-Poly1305 first on boards
// without AES instructions (Limits::tls_prefer_chacha).
// Client: accepts exactly one certificate whose SPKI hash equals the pin from
// the server's NURL; names, dates and issuers are not checked (as a
// Tahoe-LAFS client does).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "cairn/core/status.h"

namespace cairn::tls {

class Context;
struct RecordKeys;

// Whether new contexts let cairn's own record layer (src/tls/own_records.cc)
// protect application data after the handshake, instead of the mbedTLS
// session's records: limits.tls_own_records, which the daemon passes here
// once at startup, before it creates a context. The environment variable
// CAIRN_TLS_OWN_RECORDS ("0" or "1"), when set, overrides it (tests run
// whole suites either way with it). On by default. Loop thread only.
void SetOwnRecords(bool on);
bool OwnRecordsDefault();

struct ServerOptions {
  std::string key_pem;
  std::string cert_pem;
  bool prefer_chacha = false;
};

// Shared, immutable configuration for many sessions.
class Context {
 public:
  ~Context();
  static Result<std::shared_ptr<Context>> NewServer(const ServerOptions& options);
  static Result<std::shared_ptr<Context>> NewClient();
  // Overrides, for the sessions this context creates from now on, the
  // process-wide choice of record layer (SetOwnRecords).
  void set_own_records(bool on);
  bool own_records() const;

  struct Impl;
  Impl* impl() const { return impl_.get(); }

 private:
  Context();
  std::unique_ptr<Impl> impl_;
};

class Session {
 public:
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  static Result<std::unique_ptr<Session>> NewServer(std::shared_ptr<Context> ctx);
  // `spki_pin`: the 43-character SPKI hash the server must present.
  static Result<std::unique_ptr<Session>> NewClient(std::shared_ptr<Context> ctx, std::string spki_pin);

  // Bytes received from the peer.
  void Feed(std::string_view ciphertext);
  // Advances the handshake as far as the fed bytes allow. OK with *done set
  // when finished; Unauthenticated if the peer's certificate does not match
  // the pin; Unavailable for any other handshake failure.
  Status Handshake(bool* done);
  // Appends decrypted application data to `out`. *eof is set when the peer
  // closed the session (close_notify). Integrity on a bad record.
  Status Read(std::string* out, bool* eof);
  // Encrypts `plaintext` into the outgoing buffer. REQUIRES: handshake done.
  Status Write(std::string_view plaintext);
  // Queues a close_notify alert.
  void Close();
  // The ciphertext to send to the peer now (and empties the buffer).
  std::string TakeOutgoing();
  bool has_outgoing() const;

  // After the handshake: the negotiated suite, e.g.
  // "TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256".
  std::string ciphersuite() const;
  // After the handshake (client): the server's SPKI hash.
  std::string peer_spki() const;

  // After the handshake: whether its context wants cairn's own records.
  bool own_records_wanted() const;
  // After the handshake: the negotiated record keys, IVs and next sequence
  // numbers, for this side. FailedPrecondition (saying why) when cairn's
  // own record layer cannot take over: TLS 1.3, a suite other than
  // ECDHE with AES-128/256-GCM or ChaCha20-Poly1305, no exported secrets,
  // or input that mbedTLS read but did not yet process.
  Status ExportRecordKeys(RecordKeys* keys) const;
  // After the handshake: the bytes fed that the handshake did not consume
  // (the first application records, if they came with the last flight),
  // moved out. The session's own records then never see them.
  std::string TakeUnconsumed();

  struct Impl;

 private:
  Session();
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::tls
