// mutable_tool encode sdmf|mdmf KEYFILE K N SEQNUM OUTDIR < plaintext: writes
// the N shares cairn publishes for that key and data to OUTDIR/<num>.share
// (IV and salts random) and prints the write cap, so an interop test can read
// the shares with code of its own. Exit 1 with a message on failure.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

#include "cairn/caps/cap.h"
#include "cairn/caps/keys.h"
#include "cairn/core/file.h"
#include "cairn/crypto/random.h"
#include "cairn/crypto/rsa.h"
#include "cairn/mutable/mdmf.h"
#include "cairn/mutable/sdmf.h"

namespace {

template <typename Encoding>
int Finish(const cairn::Result<Encoding>& enc, const cairn::crypto::RsaKey& key, const std::string& dir) {
  if (!enc.ok()) return std::fprintf(stderr, "%s\n", enc.status().ToString().c_str()), 1;
  auto sig = key.Sign(enc->signed_prefix());
  if (!sig.ok()) return 1;
  auto shares = enc->Shares(*sig);
  if (!shares.ok()) return std::fprintf(stderr, "%s\n", shares.status().ToString().c_str()), 1;
  for (std::size_t i = 0; i < shares->size(); ++i) {
    std::ofstream f(dir + "/" + std::to_string(i) + ".share", std::ios::binary);
    f.write((*shares)[i].data(), static_cast<std::streamsize>((*shares)[i].size()));
    if (!f) return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cairn;
  if (argc != 8 || std::string(argv[1]) != "encode") return 2;
  const bool mdmf = std::string(argv[2]) == "mdmf";
  auto pem = ReadWholeFile(argv[3]);
  if (!pem.ok()) return std::fprintf(stderr, "%s\n", pem.status().ToString().c_str()), 1;
  auto key = crypto::RsaKey::ParsePrivate(*pem);
  if (!key.ok()) return std::fprintf(stderr, "%s\n", key.status().ToString().c_str()), 1;
  std::string pkcs8 = key->PrivatePkcs8Der(), pub = key->PublicSpkiDer();
  caps::MutableKeys keys = caps::DeriveMutableKeys(pkcs8, pub);
  std::string plaintext(std::istreambuf_iterator<char>(std::cin), {});
  auto k = static_cast<std::uint32_t>(std::stoul(argv[4])), n = static_cast<std::uint32_t>(std::stoul(argv[5]));
  std::uint64_t seq = std::stoull(argv[6]);
  std::string encpriv = caps::CryptPrivateKey(keys.writekey, pkcs8);
  int rc;
  if (mdmf) {
    rc = Finish(mutable_files::MdmfEncoding::Encode(keys.readkey, pub, encpriv, plaintext, k, n, seq), *key, argv[7]);
  } else {
    auto iv = crypto::RandomBytes(16);
    if (!iv.ok()) return 1;
    rc = Finish(mutable_files::SdmfEncoding::Encode(keys.readkey, pub, encpriv, plaintext, k, n, seq, *iv), *key, argv[7]);
  }
  if (rc != 0) return rc;
  caps::MutableFormat format = mdmf ? caps::MutableFormat::kMdmf : caps::MutableFormat::kSdmf;
  std::printf("%s\n", caps::FormatCap(caps::MutableWriteCap(keys, format)).c_str());
  return 0;
}
