// chk_tool encode CONVERGENCE_HEX K N MAX_SEGMENT OUTDIR < data: writes the N
// CHK shares cairn uploads for the data to OUTDIR/<num>.share and prints the
// cap, so an interop test can read the shares with code of its own. Exit 1
// with a message on failure, 2 with the usage on bad arguments. One thread.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

#include "cairn/caps/cap.h"
#include "cairn/caps/keys.h"
#include "cairn/immutable/chk.h"

int main(int argc, char** argv) {
  using namespace cairn;
  if (argc != 7 || std::string(argv[1]) != "encode") {
    std::fprintf(stderr, "usage: chk_tool encode CONVERGENCE_HEX K N MAX_SEGMENT OUTDIR < data\n");
    return 2;
  }
  std::string hex = argv[2], convergence;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) convergence.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  immutable::ChkParams p;
  p.k = static_cast<std::uint32_t>(std::stoul(argv[3]));
  p.n = static_cast<std::uint32_t>(std::stoul(argv[4]));
  p.max_segment_size = std::stoull(argv[5]);
  std::string data(std::istreambuf_iterator<char>(std::cin), {});
  auto layout = immutable::ComputeChkLayout(p, data.size());
  if (!layout.ok()) return std::fprintf(stderr, "%s\n", layout.status().ToString().c_str()), 1;
  caps::ConvergentKeyHasher hasher(convergence, p.k, p.n, layout->segment_size);
  hasher.Update(data);
  auto enc = immutable::ChkEncoder::Create(hasher.Finish(), p, data.size());
  if (!enc.ok()) return std::fprintf(stderr, "%s\n", enc.status().ToString().c_str()), 1;
  std::vector<std::string> shares(p.n, enc->ShareHeader());
  for (std::uint64_t off = 0; off < data.size(); off += layout->segment_size) {
    auto blocks = enc->EncodeSegment(data.substr(off, std::min<std::uint64_t>(layout->segment_size, data.size() - off)));
    if (!blocks.ok()) return std::fprintf(stderr, "%s\n", blocks.status().ToString().c_str()), 1;
    for (std::uint32_t i = 0; i < p.n; ++i) shares[i] += (*blocks)[i];
  }
  Status finished = enc->Finish();
  if (!finished.ok()) return std::fprintf(stderr, "%s\n", finished.ToString().c_str()), 1;
  for (std::uint32_t i = 0; i < p.n; ++i) {
    shares[i] += enc->ShareTrailer(i);
    std::ofstream f(std::string(argv[6]) + "/" + std::to_string(i) + ".share", std::ios::binary);
    f.write(shares[i].data(), static_cast<std::streamsize>(shares[i].size()));
    if (!f) return std::fprintf(stderr, "cannot write share %u to %s\n", static_cast<unsigned>(i), argv[6]), 1;
  }
  std::printf("%s\n", caps::FormatCap(enc->Cap()).c_str());
  return 0;
}
