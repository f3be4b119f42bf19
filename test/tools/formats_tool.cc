// formats_tool: exposes cairn's hash, tree, AES and RSA primitives to the
// interop tests, which compare them with independent implementations
// (Python's hashlib, the openssl command). Reads its input on stdin, writes
// raw bytes or hex lines on stdout; exit 1 with a message on failure.
//
//   formats_tool tagged-hash TAG SIZE          stdin = value          -> hex
//   formats_tool pair-hash TAG SIZE HEXA HEXB                          -> hex
//   formats_tool merkle                        stdin = hex leaf lines -> node hex lines
//   formats_tool needed COUNT LEAF 0|1                                 -> indices
//   formats_tool aes-ctr HEXKEY OFFSET         stdin -> stdout (raw)
//   formats_tool pkcs8 KEYFILE | spki KEYFILE                          -> DER (raw)
//   formats_tool sign KEYFILE                  stdin = message        -> signature (raw)
//   formats_tool verify SPKIFILE SIGFILE       stdin = message        -> exit 0 / 1
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "cairn/crypto/aes_ctr.h"
#include "cairn/crypto/hash.h"
#include "cairn/crypto/hash_tree.h"
#include "cairn/crypto/rsa.h"

namespace {

using namespace cairn;

std::string ReadAll(std::istream& in) { return std::string(std::istreambuf_iterator<char>(in), {}); }

std::string ReadFile(const char* path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "cannot read %s\n", path);
    std::exit(1);
  }
  return ReadAll(f);
}

std::string Hex(std::string_view b) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : b) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

std::string Unhex(const std::string& h) {
  std::string out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return out;
}

void Write(const std::string& s) { std::fwrite(s.data(), 1, s.size(), stdout); }

int Die(const Status& st) {
  std::fprintf(stderr, "%s\n", st.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  std::vector<std::string> a(argv + 1, argv + argc);
  if (a.empty()) return 2;
  const std::string& cmd = a[0];
  if (cmd == "tagged-hash" && a.size() == 3) {
    std::printf("%s\n", Hex(crypto::TaggedHash(a[1], ReadAll(std::cin), std::stoul(a[2]))).c_str());
  } else if (cmd == "pair-hash" && a.size() == 5) {
    std::printf("%s\n", Hex(crypto::TaggedPairHash(a[1], Unhex(a[3]), Unhex(a[4]), std::stoul(a[2]))).c_str());
  } else if (cmd == "merkle" && a.size() == 1) {
    std::vector<std::string> leaves;
    std::string line;
    while (std::getline(std::cin, line)) {
      if (!line.empty()) leaves.push_back(Unhex(line));
    }
    crypto::HashTree tree(std::move(leaves));
    for (std::size_t i = 0; i < tree.NodeCount(); ++i) std::printf("%s\n", Hex(tree.Node(i)).c_str());
  } else if (cmd == "needed" && a.size() == 4) {
    for (std::size_t i : crypto::HashTreeNeededHashes(std::stoul(a[1]), std::stoul(a[2]), a[3] == "1")) {
      std::printf("%zu\n", i);
    }
  } else if (cmd == "aes-ctr" && a.size() == 3) {
    auto ctr = crypto::AesCtr::Create(Unhex(a[1]));
    if (!ctr.ok()) return Die(ctr.status());
    std::string data = ReadAll(std::cin);
    ctr->Seek(std::stoull(a[2]));
    ctr->Apply(data);
    Write(data);
  } else if ((cmd == "pkcs8" || cmd == "spki" || cmd == "sign") && a.size() == 2) {
    auto key = crypto::RsaKey::ParsePrivate(ReadFile(a[1].c_str()));
    if (!key.ok()) return Die(key.status());
    if (cmd == "pkcs8") {
      Write(key->PrivatePkcs8Der());
    } else if (cmd == "spki") {
      Write(key->PublicSpkiDer());
    } else {
      auto sig = key->Sign(ReadAll(std::cin));
      if (!sig.ok()) return Die(sig.status());
      Write(*sig);
    }
  } else if (cmd == "verify" && a.size() == 3) {
    auto key = crypto::RsaKey::ParsePublicDer(ReadFile(a[1].c_str()));
    if (!key.ok()) return Die(key.status());
    Status st = key->Verify(ReadAll(std::cin), ReadFile(a[2].c_str()));
    if (!st.ok()) return Die(st);
  } else {
    std::fprintf(stderr, "formats_tool: bad command (see the source's header)\n");
    return 2;
  }
  return 0;
}
