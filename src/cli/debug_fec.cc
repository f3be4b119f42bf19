// `cairn debug fec encode|decode|kernels`: erasure coding as Tahoe-LAFS does
// it (zfec's blocks, Tahoe's zero padding), offline, for checking blocks
// against other tools. The framed stream is specified in docs/formats/fec.md.
// Single-threaded.
#include "cli/debug_fec.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cairn/core/endian.h"
#include "cairn/fec/fec.h"
#include "cli/output.h"

namespace cairn::cli {

const char kDebugFecUsage[] = "debug fec encode -k K -n N [-o DIR]|decode -k K -n N [--size L] FILE...|kernels";
const char kDebugFecSummary[] = "erasure-code stdin into zfec blocks, or decode any k of them";

namespace {

const char kHelp[] =
    "usage: cairn debug fec encode -k K -n N [-o DIR]  < DATA\n"
    "       cairn debug fec decode -k K -n N [--size L] FILE...  > DATA\n"
    "       cairn debug fec kernels\n"
    "\n"
    "Erasure coding exactly as Tahoe-LAFS does it: zfec's k-of-n blocks, the data\n"
    "zero-padded to k pieces of ceil(L/k) bytes (1 <= k <= n <= 256).\n"
    "\n"
    "encode  reads the data on stdin. With -o, writes DIR/0.blk .. DIR/<n-1>.blk\n"
    "        (the raw blocks; DIR is created if missing). Without it, writes the\n"
    "        n blocks to stdout as frames: a 28-byte header (\"cfec\", version 1,\n"
    "        k, n, block number, data length, block length; docs/formats/fec.md)\n"
    "        and the block.\n"
    "decode  reads any k distinct blocks from FILEs (- is stdin): raw blocks named\n"
    "        NUM.blk, or files of one or more frames. Writes the data to stdout,\n"
    "        cut to the length in the frames or --size L; raw blocks without\n"
    "        --size give the padded k*ceil(L/k) bytes.\n"
    "kernels lists the erasure-coding kernels this build and CPU have, fastest\n"
    "        first, and the one in use ($CAIRN_FEC_KERNEL=portable|ssse3|avx2|\n"
    "        neon|isal forces one).\n";

constexpr char kMagic[4] = {'c', 'f', 'e', 'c'};
constexpr std::uint8_t kVersion = 1;
constexpr std::size_t kHeaderBytes = 28;

struct Args {
  std::string verb;
  int k = 0;
  int n = 0;
  std::string out_dir;
  bool have_size = false;
  unsigned long long size = 0;
  std::vector<std::string> files;
};

int Usage(const std::string& message) {
  return UsageError("debug fec encode -k K -n N [-o DIR] | decode -k K -n N [--size L] FILE... | kernels",
                    message);
}

// Parses opts.args; returns -1 when they are good, else the exit code.
int ParseArgs(const Options& opts, Args* a) {
  const auto& args = opts.args;
  for (const auto& w : args) {
    if (w == "--help" || w == "-h") {
      std::fputs(kHelp, stdout);
      return 0;
    }
  }
  if (args.empty()) return Usage("debug fec needs encode, decode or kernels");
  a->verb = args[0];
  if (a->verb != "encode" && a->verb != "decode" && a->verb != "kernels") {
    return Usage("unknown debug fec command \"" + a->verb + "\"");
  }
  bool options_done = false;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& w = args[i];
    auto value = [&](unsigned long long max, unsigned long long* out) {
      return i + 1 < args.size() && ParseUint(args[++i], max, out);
    };
    unsigned long long v = 0;
    if (options_done || w == "-" || w.empty() || w[0] != '-') {
      a->files.push_back(w);
    } else if (w == "--") {
      options_done = true;
    } else if (w == "-k") {
      if (!value(fec::kMaxBlocks, &v) || v < 1) return Usage("-k takes a number from 1 to 256");
      a->k = static_cast<int>(v);
    } else if (w == "-n") {
      if (!value(fec::kMaxBlocks, &v) || v < 1) return Usage("-n takes a number from 1 to 256");
      a->n = static_cast<int>(v);
    } else if (w == "-o" && a->verb == "encode") {
      if (i + 1 >= args.size() || args[i + 1].empty()) return Usage("-o takes a directory");
      a->out_dir = args[++i];
    } else if (w == "--size" && a->verb == "decode") {
      if (!value(~0ULL, &a->size)) return Usage("--size takes the data length in bytes");
      a->have_size = true;
    } else {
      return Usage("unknown option " + w + " for debug fec " + a->verb);
    }
  }
  if (a->verb == "kernels") {
    if (a->k || a->n || !a->files.empty()) return Usage("debug fec kernels takes no arguments");
    return -1;
  }
  if (a->k == 0 || a->n == 0) return Usage("debug fec " + a->verb + " needs -k K and -n N");
  if (a->k > a->n) return Usage("-k must not be larger than -n");
  if (a->verb == "encode" && !a->files.empty()) return Usage("encode reads stdin; it takes no files");
  if (a->verb == "decode" && a->files.empty()) return Usage("decode needs the files of k blocks");
  // stdout carries the data in these forms: there is no room for JSON.
  if (opts.json && a->out_dir.empty()) return Usage("--json needs encode -o DIR (stdout carries the blocks or data)");
  return -1;
}

Result<std::string> ReadAll(FILE* f, const std::string& name) {
  std::string out;
  char buf[1 << 16];
  std::size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, got);
  if (std::ferror(f)) return Status::IoError(name + ": " + std::strerror(errno));
  return out;
}

Result<std::string> ReadFile(const std::string& path) {
  if (path == "-") return ReadAll(stdin, "stdin");
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Status::IoError(path + ": " + std::strerror(errno));
  auto data = ReadAll(f, path);
  std::fclose(f);
  return data;
}

Status WriteAll(FILE* f, const std::uint8_t* data, std::size_t len, const std::string& name) {
  if (len > 0 && std::fwrite(data, 1, len, f) != len) return Status::IoError(name + ": " + std::strerror(errno));
  return Status::Ok();
}

int Kernels(const Options& opts) {
  auto selected = fec::SelectedKernel();
  if (!selected.ok()) return Fail(opts, selected.status());
  if (opts.json) {
    Json out = Json::NewObject();
    cJSON* list = cJSON_AddArrayToObject(out.get(), "kernels");
    for (fec::Kernel k : fec::AvailableKernels()) {
      cJSON_AddItemToArray(list, cJSON_CreateString(std::string(fec::KernelName(k)).c_str()));
    }
    cJSON_AddStringToObject(out.get(), "selected", std::string(fec::KernelName(*selected)).c_str());
    PrintJson(out);
    return 0;
  }
  for (fec::Kernel k : fec::AvailableKernels()) {
    std::printf("%s%s\n", std::string(fec::KernelName(k)).c_str(), k == *selected ? " (selected)" : "");
  }
  return 0;
}

int Encode(const Options& opts, const Args& a) {
  auto codec = fec::Codec::Create(a.k, a.n);
  if (!codec.ok()) return Fail(opts, codec.status());
  auto input = ReadAll(stdin, "stdin");
  if (!input.ok()) return Fail(opts, input.status());
  const std::size_t size = input->size();
  const std::size_t piece = fec::PieceSize(size, a.k);
  input->resize(piece * static_cast<std::size_t>(a.k), '\0');  // Tahoe's zero padding
  const auto* data = reinterpret_cast<const std::uint8_t*>(input->data());
  std::vector<const std::uint8_t*> pieces;
  for (int c = 0; c < a.k; ++c) pieces.push_back(data + static_cast<std::size_t>(c) * piece);

  if (!a.out_dir.empty() && mkdir(a.out_dir.c_str(), 0777) != 0 && errno != EEXIST) {
    return Fail(opts, Status::IoError(a.out_dir + ": " + std::strerror(errno)));
  }
  // One parity block at a time: memory stays at the data plus one block.
  std::vector<std::uint8_t> parity(a.n > a.k ? piece : 0);
  std::vector<std::string> paths;
  for (int num = 0; num < a.n; ++num) {
    const std::uint8_t* block = data + static_cast<std::size_t>(num) * piece;
    if (num >= a.k) {
      std::uint8_t* out = parity.data();
      Status st = codec->Encode(pieces, piece, std::span<const int>(&num, 1), std::span<std::uint8_t* const>(&out, 1));
      if (!st.ok()) return Fail(opts, st);
      block = parity.data();
    }
    if (a.out_dir.empty()) {
      std::uint8_t header[kHeaderBytes] = {};
      std::memcpy(header, kMagic, 4);
      header[4] = kVersion;
      PutBe(header + 6, static_cast<std::uint64_t>(a.k), 2);
      PutBe(header + 8, static_cast<std::uint64_t>(a.n), 2);
      PutBe(header + 10, static_cast<std::uint64_t>(num), 2);
      PutBe(header + 12, size, 8);
      PutBe(header + 20, piece, 8);
      Status st = WriteAll(stdout, header, sizeof header, "stdout");
      if (st.ok()) st = WriteAll(stdout, block, piece, "stdout");
      if (!st.ok()) return Fail(opts, st);
      continue;
    }
    const std::string path = a.out_dir + "/" + std::to_string(num) + ".blk";
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return Fail(opts, Status::IoError(path + ": " + std::strerror(errno)));
    Status st = WriteAll(f, block, piece, path);
    if (std::fclose(f) != 0 && st.ok()) st = Status::IoError(path + ": " + std::strerror(errno));
    if (!st.ok()) return Fail(opts, st);
    paths.push_back(path);
  }
  if (std::fflush(stdout) != 0) return Fail(opts, Status::IoError(std::string("stdout: ") + std::strerror(errno)));
  if (a.out_dir.empty()) return 0;
  if (opts.json) {
    Json out = Json::NewObject();
    cJSON_AddNumberToObject(out.get(), "k", a.k);
    cJSON_AddNumberToObject(out.get(), "n", a.n);
    cJSON_AddNumberToObject(out.get(), "size", static_cast<double>(size));
    cJSON_AddNumberToObject(out.get(), "block_size", static_cast<double>(piece));
    cJSON_AddStringToObject(out.get(), "kernel", std::string(fec::KernelName(codec->kernel())).c_str());
    cJSON* list = cJSON_AddArrayToObject(out.get(), "blocks");
    for (const auto& p : paths) cJSON_AddItemToArray(list, cJSON_CreateString(p.c_str()));
    PrintJson(out);
  } else if (!opts.quiet) {
    std::printf("%d-of-%d: %zu bytes, padded to %zu, in %d blocks of %zu bytes: %s/0.blk .. %d.blk\n", a.k, a.n,
                size, piece * static_cast<std::size_t>(a.k), a.n, piece, a.out_dir.c_str(), a.n - 1);
  }
  return 0;
}

struct Block {
  int num;
  std::string_view data;
};

// The block number of a raw block file named NUM.blk, or -1.
int NumberFromName(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  unsigned long long v;
  if (base.size() < 5 || base.compare(base.size() - 4, 4, ".blk") != 0) return -1;
  if (!ParseUint(base.substr(0, base.size() - 4), fec::kMaxBlocks - 1, &v)) return -1;
  return static_cast<int>(v);
}

// Adds the frames in `content` (from `name`) to `blocks`; `size` records the
// data length they state (all must agree).
Status ParseFrames(const Args& a, const std::string& name, std::string_view content, std::vector<Block>* blocks,
                   bool* have_size, std::uint64_t* size) {
  std::size_t off = 0;
  while (off < content.size()) {
    const auto* h = reinterpret_cast<const std::uint8_t*>(content.data() + off);
    const std::string where = name + " at byte " + std::to_string(off);
    if (content.size() - off < kHeaderBytes || std::memcmp(h, kMagic, 4) != 0) {
      return Status::InvalidArgument(where + ": not a cairn fec frame (and the name is not NUM.blk)");
    }
    if (h[4] != kVersion || h[5] != 0) {
      return Status::UnsupportedVersion(where + ": frame version " + std::to_string(h[4]) + ", we read 1");
    }
    const auto k = GetBe(h + 6, 2), n = GetBe(h + 8, 2), num = GetBe(h + 10, 2);
    const std::uint64_t data_size = GetBe(h + 12, 8), block_size = GetBe(h + 20, 8);
    if (k != static_cast<std::uint64_t>(a.k) || n != static_cast<std::uint64_t>(a.n)) {
      return Status::InvalidArgument(where + ": frame of a " + std::to_string(k) + "-of-" + std::to_string(n) +
                                     " code, but -k " + std::to_string(a.k) + " -n " + std::to_string(a.n) +
                                     " given");
    }
    if (num >= n) return Status::InvalidArgument(where + ": block number " + std::to_string(num) + " >= n");
    if (block_size != data_size / k + (data_size % k != 0)) {
      return Status::InvalidArgument(where + ": block length " + std::to_string(block_size) +
                                     " does not fit data length " + std::to_string(data_size));
    }
    if (block_size > content.size() - off - kHeaderBytes) {
      return Status::InvalidArgument(where + ": truncated frame");
    }
    if (*have_size && *size != data_size) {
      return Status::InvalidArgument(where + ": data length " + std::to_string(data_size) +
                                     " differs from another block's " + std::to_string(*size));
    }
    *have_size = true;
    *size = data_size;
    const auto len = static_cast<std::size_t>(block_size);
    blocks->push_back({static_cast<int>(num), content.substr(off + kHeaderBytes, len)});
    off += kHeaderBytes + len;
  }
  return Status::Ok();
}

int Decode(const Options& opts, const Args& a) {
  auto codec = fec::Codec::Create(a.k, a.n);
  if (!codec.ok()) return Fail(opts, codec.status());
  std::vector<std::string> contents;  // kept alive: blocks point into them
  contents.reserve(a.files.size());
  std::vector<Block> all;
  bool frame_size_known = false;
  std::uint64_t frame_size = 0;
  for (const auto& path : a.files) {
    auto content = ReadFile(path);
    if (!content.ok()) return Fail(opts, content.status());
    contents.push_back(std::move(*content));
    const std::string_view c = contents.back();
    const int num = path == "-" ? -1 : NumberFromName(path);
    if (num >= 0) {
      if (num >= a.n) return Usage(path + ": block number " + std::to_string(num) + " is not below -n");
      all.push_back({num, c});
    } else {
      Status st = ParseFrames(a, path, c, &all, &frame_size_known, &frame_size);
      if (!st.ok()) return Fail(opts, st);
    }
  }
  // The first k distinct block numbers.
  std::vector<const std::uint8_t*> given;
  std::vector<int> nums;
  std::vector<bool> seen(static_cast<std::size_t>(a.n), false);
  for (const Block& b : all) {
    if (static_cast<int>(given.size()) == a.k || seen[static_cast<std::size_t>(b.num)]) continue;
    if (b.data.size() != all.front().data.size()) {
      return Fail(opts, Status::InvalidArgument("blocks of different lengths (" + std::to_string(b.data.size()) +
                                                " and " + std::to_string(all.front().data.size()) + " bytes)"));
    }
    seen[static_cast<std::size_t>(b.num)] = true;
    given.push_back(reinterpret_cast<const std::uint8_t*>(b.data.data()));
    nums.push_back(b.num);
  }
  if (static_cast<int>(given.size()) < a.k) {
    return Fail(opts, Status::InvalidArgument("decoding needs " + std::to_string(a.k) + " distinct blocks, got " +
                                              std::to_string(given.size())));
  }
  const std::size_t piece = all.front().data.size();
  const std::uint64_t padded = static_cast<std::uint64_t>(piece) * static_cast<std::uint64_t>(a.k);
  std::uint64_t size = frame_size_known ? frame_size : padded;
  if (a.have_size) {
    if (frame_size_known && a.size != frame_size) {
      return Fail(opts, Status::InvalidArgument("--size " + std::to_string(a.size) +
                                                " differs from the frames' data length " +
                                                std::to_string(frame_size)));
    }
    if (a.size > padded || fec::PieceSize(static_cast<std::size_t>(a.size), a.k) != piece) {
      return Fail(opts, Status::InvalidArgument("--size " + std::to_string(a.size) + " does not fit " +
                                                std::to_string(a.k) + " pieces of " + std::to_string(piece) +
                                                " bytes"));
    }
    size = a.size;
  }
  std::string out(static_cast<std::size_t>(padded), '\0');
  std::vector<std::uint8_t*> pieces;
  for (int c = 0; c < a.k; ++c) {
    pieces.push_back(reinterpret_cast<std::uint8_t*>(out.data()) + static_cast<std::size_t>(c) * piece);
  }
  Status st = codec->Decode(given, nums, piece, pieces);
  if (!st.ok()) return Fail(opts, st);
  // Tahoe pads with zeros: anything else there means blocks that do not belong together.
  for (std::size_t i = static_cast<std::size_t>(size); i < out.size(); ++i) {
    if (out[i] != '\0') {
      return Fail(opts, Status::Integrity("the decoded padding is not zero: the blocks do not belong together, "
                                          "or -k/-n/--size or a block number is wrong"));
    }
  }
  st = WriteAll(stdout, reinterpret_cast<const std::uint8_t*>(out.data()), static_cast<std::size_t>(size), "stdout");
  if (st.ok() && std::fflush(stdout) != 0) st = Status::IoError(std::string("stdout: ") + std::strerror(errno));
  if (!st.ok()) return Fail(opts, st);
  return 0;
}

}  // namespace

int DebugFecMain(const Options& opts) {
  Args a;
  const int rc = ParseArgs(opts, &a);
  if (rc >= 0) return rc;
  if (a.verb == "kernels") return Kernels(opts);
  if (a.verb == "encode") return Encode(opts, a);
  return Decode(opts, a);
}

}  // namespace cairn::cli
