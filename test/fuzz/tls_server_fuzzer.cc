// libFuzzer target: bytes from a TLS client into a server session (the
// handshake and record layers of mbedTLS as cairn drives them).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "cairn/tls/identity.h"
#include "cairn/tls/session.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static std::shared_ptr<cairn::tls::Context> ctx = [] {
    auto id = cairn::tls::GenerateIdentity();
    if (!id.ok()) __builtin_trap();
    auto c = cairn::tls::Context::NewServer({id->key_pem, id->cert_pem, false});
    if (!c.ok()) __builtin_trap();
    return *c;
  }();
  auto session = cairn::tls::Session::NewServer(ctx);
  if (!session.ok()) __builtin_trap();
  (*session)->Feed(std::string_view(reinterpret_cast<const char*>(data), size));
  bool done = false;
  if ((*session)->Handshake(&done).ok() && done) {
    std::string out;
    bool eof;
    (void)(*session)->Read(&out, &eof);
  }
  (void)(*session)->TakeOutgoing();
  return 0;
}
