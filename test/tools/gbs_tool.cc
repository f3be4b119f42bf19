// gbs_tool roundtrip KIND: decodes one GBS message of KIND from stdin with
// cairn's decoder and writes cairn's encoding of the result to stdout, so an
// interop test can check both against cbor2. Exit 1 with the decoder's error.
// KIND: version allocate allocate-response required shares corrupt rtw rtw-response
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include "cairn/gbs/messages.h"

namespace {

using namespace cairn;
using namespace cairn::gbs;

template <typename T, typename E>
int Round(const Result<T>& r, E encode) {
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
    return 1;
  }
  std::string out = encode(*r);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || std::string(argv[1]) != "roundtrip") return 2;
  std::string kind = argv[2];
  std::string in(std::istreambuf_iterator<char>(std::cin), {});
  if (kind == "version") return Round(DecodeVersion(in), EncodeVersion);
  if (kind == "allocate") return Round(DecodeAllocateRequest(in), EncodeAllocateRequest);
  if (kind == "allocate-response") return Round(DecodeAllocateResponse(in), EncodeAllocateResponse);
  if (kind == "required") return Round(DecodeRequired(in), EncodeRequired);
  if (kind == "shares") return Round(DecodeShareSet(in), EncodeShareSet);
  if (kind == "corrupt") return Round(DecodeCorruption(in), [](const std::string& s) { return EncodeCorruption(s); });
  if (kind == "rtw") return Round(DecodeRtwRequest(in), EncodeRtwRequest);
  if (kind == "rtw-response") return Round(DecodeRtwResponse(in), EncodeRtwResponse);
  return 2;
}
