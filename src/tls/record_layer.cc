// The session's own records behind the RecordLayer seam: each call forwards
// to the mbedTLS session that ran the handshake. Loop thread only.
#include "tls/record_layer.h"

#include "cairn/tls/session.h"

namespace cairn::tls {
namespace {

class SessionRecords final : public RecordLayer {
 public:
  explicit SessionRecords(Session& session) : session_(session) {}
  const char* name() const override { return "mbedtls"; }
  bool uses_session() const override { return true; }
  void Feed(std::string_view ciphertext) override { session_.Feed(ciphertext); }
  Status Open(std::string* out, bool* eof) override { return session_.Read(out, eof); }
  Status Seal(std::string_view plaintext) override { return session_.Write(plaintext); }
  void SealClose() override { session_.Close(); }
  std::string TakeOutgoing() override { return session_.TakeOutgoing(); }

 private:
  Session& session_;
};

}  // namespace

std::unique_ptr<RecordLayer> NewSessionRecords(Session& session) { return std::make_unique<SessionRecords>(session); }

}  // namespace cairn::tls
