// libFuzzer target: any bytes through every GBS message decoder and the
// header-field parsers; whatever decodes must re-encode and decode again to
// the same encoding (the codec is its own inverse on what it accepts).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cairn/gbs/fields.h"
#include "cairn/gbs/messages.h"

namespace {

template <typename T, typename Dec, typename Enc>
void Check(std::string_view in, Dec decode, Enc encode) {
  cairn::Result<T> first = decode(in);
  if (!first.ok()) return;
  std::string once = encode(*first);
  cairn::Result<T> second = decode(once);
  if (!second.ok() || encode(*second) != once) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cairn::gbs;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  Check<Version>(in, DecodeVersion, EncodeVersion);
  Check<AllocateRequest>(in, DecodeAllocateRequest, EncodeAllocateRequest);
  Check<AllocateResponse>(in, DecodeAllocateResponse, EncodeAllocateResponse);
  Check<std::vector<Range>>(in, DecodeRequired, EncodeRequired);
  Check<ShareNumbers>(in, DecodeShareSet, EncodeShareSet);
  Check<std::string>(in, DecodeCorruption, [](const std::string& s) { return EncodeCorruption(s); });
  Check<RtwResponse>(in, DecodeRtwResponse, EncodeRtwResponse);
  // RtwRequest holds views into its input: re-encode from a copy that lives.
  auto rtw = DecodeRtwRequest(in);
  if (rtw.ok()) {
    std::string once = EncodeRtwRequest(*rtw);
    auto again = DecodeRtwRequest(once);
    if (!again.ok() || EncodeRtwRequest(*again) != once) __builtin_trap();
  }
  (void)ParseRange(in);
  (void)ParseContentRange(in);
  (void)ParseSecrets({in}, {SecretKind::kUpload});
  return 0;
}
