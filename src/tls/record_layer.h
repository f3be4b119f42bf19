// The seam between a tls::Connection and the protection of its records: what
// the connection calls, once its handshake has finished, to turn ciphertext
// from the socket into plaintext and plaintext into ciphertext for the
// socket. The connection owns the buffers, the flow control and the pacing;
// a record layer owns only the records. Private to src/tls. Loop thread only.
//
// Two implement it: the mbedTLS session that ran the handshake
// (NewSessionRecords), and cairn's own TLS 1.2 records with the keys the
// handshake agreed (own_records.h). NewRecordLayer (own_records.h) chooses,
// where the connection opens its handshake gate (Connection::Impl::OpenGate,
// src/tls/connection.cc); nothing else in the connection changes. What a
// record layer must honour: it takes over the bytes the handshake engine received after its
// last handshake message (application data may come with the last flight),
// it never calls back, and TakeOutgoing hands over its buffer without a copy.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "cairn/core/status.h"

namespace cairn::tls {

class Session;

class RecordLayer {
 public:
  virtual ~RecordLayer() = default;

  // "cairn" or "mbedtls": whose records these are (tests, logs).
  virtual const char* name() const = 0;
  // Whether this layer needs the session that ran the handshake. When it
  // does not, the connection frees the session (mbedTLS's context with its
  // two 16 KiB record buffers) once the layer has taken over.
  virtual bool uses_session() const = 0;

  // Ciphertext received from the peer, appended to what waits to be opened.
  virtual void Feed(std::string_view ciphertext) = 0;
  // Opens every whole record fed so far and appends its plaintext to `out`
  // (a partial record waits for more bytes). *eof is set when the peer sent
  // close_notify. Integrity on a record that fails to open; the connection
  // then ends.
  virtual Status Open(std::string* out, bool* eof) = 0;
  // Seals `plaintext` into records appended to the outgoing ciphertext.
  virtual Status Seal(std::string_view plaintext) = 0;
  // Appends the close_notify alert to the outgoing ciphertext.
  virtual void SealClose() = 0;
  // For a layer whose records can be sealed off the loop: fixes the
  // sequence numbers of the records of the next `len` plaintext bytes
  // (as if Seal had sealed them) and returns the function that seals
  // exactly those bytes into their records. The function is pure: it may
  // run once, on any thread, while the loop seals later records. Its
  // output must reach the socket in the order ReserveSeal was called, and
  // before anything sealed after the call. A null function when this
  // layer cannot (mbedTLS's records, or a closing layer).
  virtual std::function<std::string(std::string_view)> ReserveSeal(std::size_t len) {
    (void)len;
    return nullptr;
  }
  // The ciphertext to send now, moved out (the buffer is left empty).
  virtual std::string TakeOutgoing() = 0;

  // What a function of ReserveOpen gives back: the plaintext of the records
  // it opened, in order, up to the first whose tag failed (none of that
  // one's bytes), and Integrity if one failed.
  struct Opened {
    std::string plaintext;
    Status status;
  };
  // For a layer whose records can be opened off the loop: from now on Open
  // stops before a whole application data record whose ciphertext (the
  // record's body) is `min_body` bytes or more, and leaves it to
  // ReserveOpen. 0 (the default) opens everything in Open.
  virtual void OpenLargeRecordsElsewhere(std::size_t min_body) { (void)min_body; }
  // If the next record fed is such a large one, whole: takes it and the
  // whole application data records right after it, fixes their sequence
  // numbers (as if Open had opened them) and returns the function that
  // opens exactly those. The function is pure: it may run once, on any
  // thread. Its plaintext must be delivered before anything Open opens
  // after this call; if its status is not OK, the caller passes it to
  // OpenFailed instead of opening more. A null function otherwise (mbedTLS's
  // records, a failed or closed layer, nothing large at the head).
  virtual std::function<Opened()> ReserveOpen() { return nullptr; }
  // A record of a ReserveOpen failed to open: the layer fails as Open
  // would have (an alert to send, every later Open fails) and returns the
  // connection's error.
  virtual Status OpenFailed(Status why) { return why; }
};

// The record layer of a session whose handshake has finished: the session's
// own records. `session` must outlive the result.
std::unique_ptr<RecordLayer> NewSessionRecords(Session& session);

}  // namespace cairn::tls
