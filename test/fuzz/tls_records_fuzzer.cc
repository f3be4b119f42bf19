// libFuzzer target: cairn's own TLS 1.2 record layer (src/tls/own_records.cc)
// opening what a peer sends after the handshake. The keys are fixed, as a
// handshake would have agreed them (the read sequence number starts at 1);
// the input is a script that interleaves arbitrary bytes with records a
// genuine peer sealed with those keys (application data, alerts, handshake
// records, any type), fed whole or split in two, and calls to Open.
//
// Checked on every Open: the plaintext delivered so far is a prefix of the
// genuine peer's application data, in its order (no byte of a forged,
// corrupted, replayed or misplaced record is ever delivered); after a
// failure or close_notify nothing more is delivered and the same answer
// comes back; the layer's own output (alerts) stays within one record per
// failure and opens with the peer's keys.
//
// Script: byte 0 picks the suite (AES-128-GCM, AES-256-GCM,
// ChaCha20-Poly1305). Then operations, one byte each, and their operands:
//   op % 4 == 0: raw bytes: n = next byte + 1, then n bytes fed as they are;
//   op % 4 == 1: a genuine application-data record: 2 bytes of length
//                (modulo 16 KiB + 1), its plaintext from the input (as much
//                as is left), 1 byte: where to split it between two Feeds;
//   op % 4 == 2: a genuine record of the type in the next byte, with up to
//                3 bytes of plaintext from the input (the next byte's low
//                two bits give the length);
//   op % 4 == 3: Open.
// Open is also called once at the end.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "tls/own_records.h"

namespace {

using cairn::tls::RecordCipher;
using cairn::tls::RecordKeys;

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

struct Reader {
  const std::uint8_t* p;
  std::size_t left;
  bool Empty() const { return left == 0; }
  std::uint8_t Byte() {
    if (left == 0) return 0;
    --left;
    return *p++;
  }
  std::string_view Bytes(std::size_t n) {
    if (n > left) n = left;
    std::string_view out(reinterpret_cast<const char*>(p), n);
    p += n;
    left -= n;
    return out;
  }
};

RecordKeys Keys(std::uint8_t suite) {
  RecordKeys k;
  switch (suite % 3) {
    case 0:
      k.algorithm = cairn::crypto::AeadAlgorithm::kAes128Gcm;
      break;
    case 1:
      k.algorithm = cairn::crypto::AeadAlgorithm::kAes256Gcm;
      break;
    default:
      k.algorithm = cairn::crypto::AeadAlgorithm::kChaCha20Poly1305;
      break;
  }
  std::size_t key_len = cairn::crypto::AeadKeySize(k.algorithm);
  std::size_t iv_len = k.algorithm == cairn::crypto::AeadAlgorithm::kChaCha20Poly1305 ? 12 : 4;
  k.write_key = std::string(key_len, 'w');
  k.read_key = std::string(key_len, 'r');
  k.write_iv = std::string(iv_len, 'v');
  k.read_iv = std::string(iv_len, 'i');
  k.write_seq = 1;
  k.read_seq = 1;
  return k;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Reader in{data, size};
  RecordKeys keys = Keys(in.Byte());
  auto layer = cairn::tls::NewOwnRecords(keys, "");
  Check(layer.ok());
  // The genuine peer: it seals with our read keys, and opens what we send
  // with our write keys.
  auto peer_seal = RecordCipher::New(keys.algorithm, keys.read_key, keys.read_iv);
  auto peer_open = RecordCipher::New(keys.algorithm, keys.write_key, keys.write_iv);
  Check(peer_seal.ok() && peer_open.ok());
  std::uint64_t peer_seq = keys.read_seq, our_seq = keys.write_seq;
  std::string genuine;    // the peer's application data, in order
  std::string delivered;  // what Open gave
  bool ended = false;     // Open reported a failure or close_notify
  bool ended_ok = false;
  std::size_t alerts_seen = 0;

  auto open_all = [&]() {
    std::string out;
    bool eof = false;
    cairn::Status st = (*layer)->Open(&out, &eof);
    if (ended) Check(out.empty() && st.ok() == ended_ok);
    delivered += out;
    Check(delivered.size() <= genuine.size() && genuine.compare(0, delivered.size(), delivered) == 0);
    if (!st.ok() || eof) {
      ended = true;
      ended_ok = st.ok();
    }
    // What the layer sends back (a fatal alert on failure) is records
    // the peer can open, numbered from our write sequence number.
    std::string sent = (*layer)->TakeOutgoing();
    std::size_t at = 0;
    while (at < sent.size()) {
      Check(sent.size() - at >= cairn::tls::kRecordHeader);
      const auto* rec = reinterpret_cast<const std::uint8_t*>(sent.data() + at);
      std::size_t len = static_cast<std::size_t>(rec[3]) << 8 | rec[4];
      Check(rec[0] == cairn::tls::kTypeAlert && sent.size() - at - cairn::tls::kRecordHeader >= len);
      std::string plain(len, '\0');
      Check((*peer_open)
                .Open(our_seq++, rec[0], rec + cairn::tls::kRecordHeader, len,
                      reinterpret_cast<std::uint8_t*>(plain.data()))
                .ok());
      ++alerts_seen;
      at += cairn::tls::kRecordHeader + len;
    }
    Check(alerts_seen <= 1);
  };
  auto seal_record = [&](std::uint8_t type, std::string_view plain) {
    std::string rec(plain.size() + peer_seal->overhead(), '\0');
    peer_seal->Seal(peer_seq++, type, reinterpret_cast<const std::uint8_t*>(plain.data()), plain.size(),
                    reinterpret_cast<std::uint8_t*>(rec.data()));
    return rec;
  };

  while (!in.Empty()) {
    std::uint8_t op = in.Byte();
    switch (op % 4) {
      case 0: {
        std::size_t n = static_cast<std::size_t>(in.Byte()) + 1;
        (*layer)->Feed(in.Bytes(n));
        break;
      }
      case 1: {
        std::size_t n = (static_cast<std::size_t>(in.Byte()) << 8 | in.Byte()) % (cairn::tls::kMaxRecordPlaintext + 1);
        std::string_view plain = in.Bytes(n);
        std::string rec = seal_record(cairn::tls::kTypeApplicationData, plain);
        std::size_t cut = rec.size() * in.Byte() / 256;
        genuine.append(plain);
        (*layer)->Feed(std::string_view(rec).substr(0, cut));
        (*layer)->Feed(std::string_view(rec).substr(cut));
        break;
      }
      case 2: {
        std::uint8_t type = in.Byte();
        std::string_view plain = in.Bytes(in.Byte() % 4);
        if (type == cairn::tls::kTypeApplicationData) genuine.append(plain);
        (*layer)->Feed(seal_record(type, plain));
        break;
      }
      default:
        open_all();
        break;
    }
  }
  open_all();
  return 0;
}
