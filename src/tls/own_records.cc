// cairn's own TLS 1.2 AEAD records behind the RecordLayer seam
// (own_records.h), and the choice between them and the mbedTLS session's.
// Loop thread only, except RecordCipher's Seal and Open, which are pure.
//
// The layout (RFC 5246 6.2.3.3): a 5-byte header (type, version 3.3,
// length), then for AES-GCM (RFC 5288) an 8-byte explicit nonce, which is
// the record's sequence number, the ciphertext and the 16-byte tag; the
// nonce is the 4-byte implicit salt followed by the explicit part. For
// ChaCha20-Poly1305 (RFC 7905) there is no explicit nonce: the nonce is the
// 12-byte IV XORed with the sequence number, left-padded to 12 bytes. The
// additional data is seq_num(8) + type(1) + version(2) + plaintext
// length(2).
#include "tls/own_records.h"

#include <atomic>
#include <cstring>

#include "cairn/core/endian.h"
#include "cairn/core/log.h"
#include "cairn/tls/session.h"

namespace cairn::tls {

// --- One record
// ---------------------------------------------------------------------

Result<RecordCipher> RecordCipher::New(crypto::AeadAlgorithm algorithm, std::string_view key, std::string_view iv) {
  RecordCipher c;
  bool gcm = algorithm != crypto::AeadAlgorithm::kChaCha20Poly1305;
  if (iv.size() != (gcm ? 4u : crypto::kAeadNonceSize)) {
    return Status::InvalidArgument("TLS record IV of " + std::to_string(iv.size()) + " bytes");
  }
  CAIRN_TRY_ASSIGN(std::unique_ptr<crypto::Aead> aead, crypto::NewAead(algorithm, key));
  c.aead_ = std::move(aead);
  std::memcpy(c.iv_, iv.data(), iv.size());
  c.explicit_nonce_ = gcm ? 8 : 0;
  return c;
}

void RecordCipher::Nonce(std::uint64_t seq, std::uint8_t nonce[crypto::kAeadNonceSize]) const {
  std::memcpy(nonce, iv_, crypto::kAeadNonceSize);
  if (explicit_nonce_ != 0) {
    PutBe(nonce + 4, seq,
          8);  // GCM: salt + explicit nonce (the sequence number)
    return;
  }
  for (int i = 0; i < 8; ++i) nonce[4 + i] ^= static_cast<std::uint8_t>(seq >> (8 * (7 - i)));
}

namespace {

void Aad(std::uint64_t seq, std::uint8_t type, std::size_t len, std::uint8_t aad[13]) {
  PutBe(aad, seq, 8);
  aad[8] = type;
  aad[9] = 3;
  aad[10] = 3;
  PutBe(aad + 11, len, 2);
}

std::string_view AsView(const std::uint8_t* p, std::size_t n) { return {reinterpret_cast<const char*>(p), n}; }

}  // namespace

void RecordCipher::Seal(std::uint64_t seq, std::uint8_t type, const std::uint8_t* in, std::size_t len,
                        std::uint8_t* out) const {
  std::size_t body = explicit_nonce_ + len + crypto::kAeadTagSize;
  out[0] = type;
  out[1] = 3;
  out[2] = 3;
  PutBe(out + 3, body, 2);
  if (explicit_nonce_ != 0) PutBe(out + kRecordHeader, seq, 8);
  std::uint8_t nonce[crypto::kAeadNonceSize];
  std::uint8_t aad[13];
  Nonce(seq, nonce);
  Aad(seq, type, len, aad);
  std::uint8_t* ct = out + kRecordHeader + explicit_nonce_;
  aead_->Seal(nonce, AsView(aad, sizeof aad), in, len, ct, ct + len);
}

std::uint64_t RecordCipher::SealAll(std::uint64_t first_seq, std::string_view plaintext, std::string* out) const {
  std::uint64_t records = RecordsFor(plaintext.size());
  std::size_t at = out->size();
  out->resize(at + plaintext.size() + records * overhead());
  auto* dst = reinterpret_cast<std::uint8_t*>(out->data()) + at;
  const auto* src = reinterpret_cast<const std::uint8_t*>(plaintext.data());
  std::size_t left = plaintext.size();
  std::uint64_t seq = first_seq;
  while (left > 0) {
    std::size_t n = left < kMaxRecordPlaintext ? left : kMaxRecordPlaintext;
    Seal(seq++, kTypeApplicationData, src, n, dst);
    src += n;
    dst += n + overhead();
    left -= n;
  }
  return records;
}

Status RecordCipher::Open(std::uint64_t seq, std::uint8_t type, const std::uint8_t* body, std::size_t body_len,
                          std::uint8_t* out) const {
  std::size_t len = body_len - explicit_nonce_ - crypto::kAeadTagSize;
  std::uint8_t nonce[crypto::kAeadNonceSize];
  std::uint8_t aad[13];
  // The explicit nonce is the peer's to choose (RFC 5288 3): use what the
  // record carries, not our count.
  std::memcpy(nonce, iv_, crypto::kAeadNonceSize);
  if (explicit_nonce_ != 0) {
    std::memcpy(nonce + 4, body, 8);
  } else {
    Nonce(seq, nonce);
  }
  Aad(seq, type, len, aad);
  const std::uint8_t* ct = body + explicit_nonce_;
  return aead_->Open(nonce, AsView(aad, sizeof aad), ct, len, ct + len, out);
}

// --- The record layer
// ---------------------------------------------------------------

namespace {

std::atomic<std::uint64_t> g_reserved_seals{0};
std::atomic<std::uint64_t> g_reserved_opens{0};

// At most this many records go to one ReserveOpen function (the input
// buffer holds about 64 KiB, four or five full records, anyway).
constexpr std::uint64_t kMaxRecordsPerOpenJob = 16;

// Alert descriptions (RFC 5246 7.2).
constexpr std::uint8_t kAlertWarning = 1;
constexpr std::uint8_t kAlertFatal = 2;
constexpr std::uint8_t kCloseNotify = 0;
constexpr std::uint8_t kUnexpectedMessage = 10;
constexpr std::uint8_t kBadRecordMac = 20;
constexpr std::uint8_t kRecordOverflow = 22;
constexpr std::uint8_t kDecodeError = 50;
constexpr std::uint8_t kProtocolVersion = 70;
constexpr std::uint8_t kNoRenegotiation = 100;

class OwnRecords final : public RecordLayer {
 public:
  OwnRecords(RecordCipher seal, RecordCipher open, std::uint64_t write_seq, std::uint64_t read_seq)
      : seal_(std::move(seal)), open_(std::move(open)), write_seq_(write_seq), read_seq_(read_seq) {}

  const char* name() const override { return "cairn"; }
  bool uses_session() const override { return false; }

  // The new bytes go after what still waits (at most a partial record); the
  // buffer is reallocated to fit exactly both when its room is too small,
  // so it never grows past a partial record plus one socket read.
  void Feed(std::string_view ciphertext) override {
    if (ciphertext.empty() || in_done_) return;
    std::size_t waiting = in_len_ - in_off_;
    if (in_cap_ - in_len_ < ciphertext.size()) {
      if (waiting + ciphertext.size() <= in_cap_) {
        std::memmove(in_.get(), in_.get() + in_off_, waiting);
      } else {
        std::unique_ptr<char[]> next(new char[waiting + ciphertext.size()]);
        if (waiting > 0) std::memcpy(next.get(), in_.get() + in_off_, waiting);
        in_ = std::move(next);
        in_cap_ = waiting + ciphertext.size();
      }
      in_off_ = 0;
      in_len_ = waiting;
    }
    std::memcpy(in_.get() + in_len_, ciphertext.data(), ciphertext.size());
    in_len_ += ciphertext.size();
  }

  Status Open(std::string* out, bool* eof) override;
  // Open's loop over the whole records fed.
  Status OpenRecords(std::string* out, bool* eof);
  Status Seal(std::string_view plaintext) override;
  void SealClose() override {
    if (close_sent_) return;
    close_sent_ = true;
    SealAlert(kAlertWarning, kCloseNotify);
  }
  std::function<std::string(std::string_view)> ReserveSeal(std::size_t len) override {
    std::uint64_t records = RecordCipher::RecordsFor(len);
    if (close_sent_ || write_seq_ > UINT64_MAX - records - 1) return nullptr;
    std::uint64_t first = write_seq_;
    write_seq_ += records;
    ++g_reserved_seals;
    return [cipher = seal_, first, len](std::string_view plaintext) {
      CAIRN_CHECK(plaintext.size() == len, "ReserveSeal's function got another length than was reserved");
      std::string out;
      cipher.SealAll(first, plaintext, &out);
      return out;
    };
  }
  std::string TakeOutgoing() override {
    std::string out;
    out.swap(out_);
    return out;
  }
  void OpenLargeRecordsElsewhere(std::size_t min_body) override { offload_min_ = min_body; }
  std::function<Opened()> ReserveOpen() override;
  Status OpenFailed(Status why) override {
    if (in_done_) return in_failed_.ok() ? why : in_failed_;
    return Fail(kBadRecordMac, std::move(why));
  }

 private:
  // The checks of a record's header at `rec` (RFC 5246 6.2): OK, or the
  // alert to send and why.
  struct HeaderCheck {
    std::uint8_t alert = 0;
    Status why;
  };
  HeaderCheck CheckHeader(const std::uint8_t* rec) const;
  // Whether Open leaves the whole application data record with this body
  // length to ReserveOpen (whose run needs room in the sequence numbers).
  bool LeftToReserveOpen(std::uint8_t type, std::size_t body_len) const {
    return offload_min_ != 0 && type == kTypeApplicationData && body_len >= offload_min_ &&
           read_seq_ < UINT64_MAX - kMaxRecordsPerOpenJob;
  }

  // Ends the incoming side: sends a fatal alert (so the peer learns why)
  // and makes every later Open return `why`.
  Status Fail(std::uint8_t alert, Status why) {
    if (!close_sent_ && alert != 0) {
      SealAlert(kAlertFatal, alert);
      close_sent_ = true;
    }
    in_failed_ = why;
    in_done_ = true;
    DropInput();
    return why;
  }
  void DropInput() {
    in_.reset();
    in_cap_ = in_off_ = in_len_ = 0;
  }
  // After Open: what waits is at most a partial record, or whole records
  // left to ReserveOpen. A connection that
  // waits (for its application, or for the rest of a record) keeps only
  // that: an empty buffer is freed, and a partial record in a larger
  // buffer moves to one that fits its whole record (header and length
  // already known) or just its header's bytes.
  void Trim() {
    std::size_t waiting = in_len_ - in_off_;
    if (waiting == 0) return DropInput();
    std::size_t room = kRecordHeader;
    if (waiting >= kRecordHeader) {
      room += GetBe(reinterpret_cast<const std::uint8_t*>(in_.get() + in_off_ + 3), 2);
    }
    // More than one record waits (Open left a large one to ReserveOpen):
    // the buffer is kept as it is.
    if (in_cap_ <= room || waiting > room) return;
    std::unique_ptr<char[]> next(new char[room]);
    std::memcpy(next.get(), in_.get() + in_off_, waiting);
    in_ = std::move(next);
    in_cap_ = room;
    in_off_ = 0;
    in_len_ = waiting;
  }
  void SealRecord(std::uint8_t type, const std::uint8_t* in, std::size_t len) {
    std::size_t old = out_.size();
    out_.resize(old + len + seal_.overhead());
    seal_.Seal(write_seq_++, type, in, len, reinterpret_cast<std::uint8_t*>(&out_[old]));
  }
  void SealAlert(std::uint8_t level, std::uint8_t description) {
    const std::uint8_t alert[2] = {level, description};
    SealRecord(kTypeAlert, alert, sizeof alert);
  }

  RecordCipher seal_, open_;
  std::uint64_t write_seq_, read_seq_;
  // Ciphertext fed: bytes [in_off_, in_len_) of in_ (in_cap_ bytes) are
  // not yet opened.
  std::unique_ptr<char[]> in_;
  std::size_t in_cap_ = 0, in_off_ = 0, in_len_ = 0;
  std::string out_;
  bool close_sent_ = false;
  bool in_done_ = false;  // close_notify or a failure: nothing more is opened
  bool eof_ = false;
  Status in_failed_;
  std::size_t offload_min_ = 0;  // OpenLargeRecordsElsewhere
};

OwnRecords::HeaderCheck OwnRecords::CheckHeader(const std::uint8_t* rec) const {
  std::uint8_t type = rec[0];
  std::size_t len = GetBe(rec + 3, 2);
  if (rec[1] != 3 || rec[2] != 3) {
    return {kProtocolVersion, Status::Integrity("TLS record of version " + std::to_string(rec[1]) + "." +
                                                std::to_string(rec[2]) + " after a TLS 1.2 handshake")};
  }
  if (type != kTypeApplicationData && type != kTypeAlert && type != kTypeHandshake) {
    return {kUnexpectedMessage, Status::Integrity("TLS record of type " + std::to_string(type) + " after the handshake")};
  }
  if (len > kMaxRecordCiphertext) {
    return {kRecordOverflow, Status::Integrity("TLS record of " + std::to_string(len) + " bytes")};
  }
  std::size_t min_len = open_.explicit_nonce() + crypto::kAeadTagSize;
  if (len < min_len) {
    return {kBadRecordMac, Status::Integrity("TLS record of " + std::to_string(len) + " bytes is too short")};
  }
  if (len - min_len > kMaxRecordPlaintext) {
    return {kRecordOverflow, Status::Integrity("TLS record of " + std::to_string(len - min_len) + " plaintext bytes")};
  }
  return {};
}

Status OwnRecords::Open(std::string* out, bool* eof) {
  *eof = eof_;
  if (in_done_) return in_failed_;
  Status st = OpenRecords(out, eof);
  if (!in_done_) Trim();
  return st;
}

Status OwnRecords::OpenRecords(std::string* out, bool* eof) {
  while (in_len_ - in_off_ >= kRecordHeader) {
    const auto* rec = reinterpret_cast<const std::uint8_t*>(in_.get() + in_off_);
    std::uint8_t type = rec[0];
    std::size_t len = GetBe(rec + 3, 2);
    // The header is checked as soon as it is here, before its body.
    HeaderCheck check = CheckHeader(rec);
    if (!check.why.ok()) return Fail(check.alert, std::move(check.why));
    if (in_len_ - in_off_ < kRecordHeader + len) break;  // the rest comes with a later read
    if (LeftToReserveOpen(type, len)) break;
    std::size_t plain_len = len - open_.explicit_nonce() - crypto::kAeadTagSize;
    if (read_seq_ == UINT64_MAX) return Fail(0, Status::Integrity("TLS read sequence number exhausted"));
    const std::uint8_t* body = rec + kRecordHeader;
    if (type == kTypeApplicationData) {
      // Opened straight into the caller's buffer; a record whose tag fails
      // is cut off again, so none of its bytes reach the application.
      std::size_t old = out->size();
      out->resize(old + plain_len);
      Status st = open_.Open(read_seq_, type, body, len, reinterpret_cast<std::uint8_t*>(&(*out)[old]));
      if (!st.ok()) {
        out->resize(old);
        return Fail(kBadRecordMac, Status::Integrity("TLS record: bad authentication tag"));
      }
      ++read_seq_;
      in_off_ += kRecordHeader + len;
      continue;
    }
    std::string plain(plain_len, '\0');
    Status st = open_.Open(read_seq_, type, body, len, reinterpret_cast<std::uint8_t*>(plain.data()));
    if (!st.ok()) return Fail(kBadRecordMac, Status::Integrity("TLS record: bad authentication tag"));
    ++read_seq_;
    in_off_ += kRecordHeader + len;
    if (type == kTypeHandshake) {
      // A HelloRequest or a ClientHello: renegotiation, which cairn refuses.
      return Fail(kNoRenegotiation, Status::Unavailable("TLS: the peer tried to renegotiate (refused)"));
    }
    if (plain.size() != 2)
      return Fail(kDecodeError, Status::Integrity("TLS alert of " + std::to_string(plain_len) + " bytes"));
    auto level = static_cast<std::uint8_t>(plain[0]);
    auto description = static_cast<std::uint8_t>(plain[1]);
    if (description == kCloseNotify) {
      eof_ = *eof = true;
      in_done_ = true;
      DropInput();
      return Status();
    }
    if (level == kAlertFatal) {
      return Fail(0, Status::Unavailable("TLS: the peer sent fatal alert " + std::to_string(description)));
    }
    // A warning (user_canceled, no_renegotiation) changes nothing here.
  }
  return Status();
}

Status OwnRecords::Seal(std::string_view plaintext) {
  if (close_sent_) return Status::Unavailable("TLS: the connection is closing");
  std::uint64_t records = RecordCipher::RecordsFor(plaintext.size());
  if (write_seq_ > UINT64_MAX - records - 1) return Status::Unavailable("TLS write sequence number exhausted");
  write_seq_ += seal_.SealAll(write_seq_, plaintext, &out_);
  return Status();
}

// The run: the large record at the head and the whole application data
// records after it with good headers, copied out (at most about 64 KiB, a
// few microseconds on the loop) so the input buffer can take more.
std::function<RecordLayer::Opened()> OwnRecords::ReserveOpen() {
  if (in_done_) return nullptr;
  std::size_t at = in_off_;
  std::uint64_t records = 0;
  while (records < kMaxRecordsPerOpenJob && in_len_ - at >= kRecordHeader) {
    const auto* rec = reinterpret_cast<const std::uint8_t*>(in_.get() + at);
    std::size_t len = GetBe(rec + 3, 2);
    if (rec[0] != kTypeApplicationData || !CheckHeader(rec).why.ok() || in_len_ - at < kRecordHeader + len) break;
    if (records == 0 && !LeftToReserveOpen(rec[0], len)) break;
    at += kRecordHeader + len;
    ++records;
  }
  if (records == 0) return nullptr;
  std::string wire(in_.get() + in_off_, at - in_off_);
  std::uint64_t first = read_seq_;
  read_seq_ += records;
  in_off_ = at;
  Trim();
  ++g_reserved_opens;
  return [cipher = open_, first, wire = std::move(wire)]() {
    Opened opened;
    const auto* p = reinterpret_cast<const std::uint8_t*>(wire.data());
    const std::uint8_t* end = p + wire.size();
    std::size_t min_len = cipher.explicit_nonce() + crypto::kAeadTagSize;
    opened.plaintext.reserve(wire.size());
    for (std::uint64_t seq = first; p < end; ++seq) {
      std::size_t len = GetBe(p + 3, 2);
      std::size_t old = opened.plaintext.size();
      opened.plaintext.resize(old + len - min_len);
      Status st = cipher.Open(seq, kTypeApplicationData, p + kRecordHeader, len,
                              reinterpret_cast<std::uint8_t*>(&opened.plaintext[old]));
      if (!st.ok()) {
        opened.plaintext.resize(old);
        opened.status = Status::Integrity("TLS record: bad authentication tag");
        break;
      }
      p += kRecordHeader + len;
    }
    return opened;
  };
}

}  // namespace

std::uint64_t TEST_reserved_seals() { return g_reserved_seals; }
std::uint64_t TEST_reserved_opens() { return g_reserved_opens; }

Result<std::unique_ptr<RecordLayer>> NewOwnRecords(const RecordKeys& keys, std::string_view unconsumed) {
  CAIRN_TRY_ASSIGN(RecordCipher seal, RecordCipher::New(keys.algorithm, keys.write_key, keys.write_iv));
  CAIRN_TRY_ASSIGN(RecordCipher open, RecordCipher::New(keys.algorithm, keys.read_key, keys.read_iv));
  auto records = std::make_unique<OwnRecords>(std::move(seal), std::move(open), keys.write_seq, keys.read_seq);
  if (!unconsumed.empty()) records->Feed(unconsumed);
  return std::unique_ptr<RecordLayer>(std::move(records));
}

std::unique_ptr<RecordLayer> NewRecordLayer(Session& session) {
  if (session.own_records_wanted()) {
    RecordKeys keys;
    Status st = session.ExportRecordKeys(&keys);
    if (st.ok()) {
      std::string unconsumed = session.TakeUnconsumed();
      auto records = NewOwnRecords(keys, unconsumed);
      if (records.ok()) return std::move(*records);
      // The handshake's leftovers went to the failed layer: give them back.
      session.Feed(unconsumed);
      st = records.status();
    }
    CAIRN_LOG(Debug, "tls: mbedTLS's records for this connection: %s", st.ToString().c_str());
  }
  return NewSessionRecords(session);
}

}  // namespace cairn::tls
