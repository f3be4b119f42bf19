// The ISA-L kernel: Intel's ec_encode_data (Debian's libisal-dev), which
// picks its own SSE/AVX/AVX2/AVX-512 or NEON code at run time. Fed with
// zfec's matrix rows through ec_init_tables, whose 32-byte tables are the
// layout every kernel here shares. Built only with -DCAIRN_HAVE_ISAL (the
// Makefile sets it when the toolchain can link -lisal). Any thread.
#include "fec/kernel.h"

#ifdef CAIRN_HAVE_ISAL

#include <isa-l/erasure_code.h>

namespace cairn::fec {

// ISA-L's arguments are not const-qualified, but it only reads the
// coefficients, the tables and the data.
void InitTablesIsal(int k, int rows, const std::uint8_t* coefs, std::uint8_t* tables) {
  ec_init_tables(k, rows, const_cast<unsigned char*>(coefs), tables);
}

void DotIsal(std::size_t len, int k, int rows, const std::uint8_t* tables, const std::uint8_t* const* in,
             std::uint8_t* const* out) {
  // ec_encode_data takes an int length: feed it at most 1 GiB at a time.
  constexpr std::size_t kChunk = std::size_t{1} << 30;
  unsigned char* data[kMaxBlocks];
  unsigned char* coding[kMaxBlocks];
  for (std::size_t off = 0; off < len; off += kChunk) {
    const std::size_t n = len - off < kChunk ? len - off : kChunk;
    for (int c = 0; c < k; ++c) data[c] = const_cast<unsigned char*>(in[c]) + off;
    for (int r = 0; r < rows; ++r) coding[r] = out[r] + off;
    ec_encode_data(static_cast<int>(n), k, rows, const_cast<unsigned char*>(tables), data, coding);
  }
}

}  // namespace cairn::fec

#endif
