// sdmf_tool encode KEYFILE K N SEQNUM OUTDIR < plaintext: writes the N SDMF
// shares cairn publishes for that key and data to OUTDIR/<num>.share (the IV
// random) and prints the write cap, so an interop test can read the shares
// with code of its own. Exit 1 with a message on failure.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <string>

#include "cairn/caps/cap.h"
#include "cairn/caps/keys.h"
#include "cairn/core/file.h"
#include "cairn/crypto/rsa.h"
#include "cairn/mutable/sdmf.h"

int main(int argc, char** argv) {
  using namespace cairn;
  if (argc != 7 || std::string(argv[1]) != "encode") return 2;
  auto pem = ReadWholeFile(argv[2]);
  if (!pem.ok()) return std::fprintf(stderr, "%s\n", pem.status().ToString().c_str()), 1;
  auto key = crypto::RsaKey::ParsePrivate(*pem);
  if (!key.ok()) return std::fprintf(stderr, "%s\n", key.status().ToString().c_str()), 1;
  std::string pkcs8 = key->PrivatePkcs8Der(), pub = key->PublicSpkiDer();
  caps::MutableKeys keys = caps::DeriveMutableKeys(pkcs8, pub);
  std::string plaintext(std::istreambuf_iterator<char>(std::cin), {});
  std::random_device rd;
  std::string iv(16, '\0');
  for (char& c : iv) c = static_cast<char>(rd());
  auto enc = mutable_files::SdmfEncoding::Encode(keys.readkey, pub, caps::CryptPrivateKey(keys.writekey, pkcs8),
                                                 plaintext, static_cast<std::uint32_t>(std::stoul(argv[3])),
                                                 static_cast<std::uint32_t>(std::stoul(argv[4])), std::stoull(argv[5]), iv);
  if (!enc.ok()) return std::fprintf(stderr, "%s\n", enc.status().ToString().c_str()), 1;
  auto sig = key->Sign(enc->signed_prefix());
  if (!sig.ok()) return 1;
  auto shares = enc->Shares(*sig);
  if (!shares.ok()) return 1;
  for (std::size_t i = 0; i < shares->size(); ++i) {
    std::ofstream f(std::string(argv[6]) + "/" + std::to_string(i) + ".share", std::ios::binary);
    f.write((*shares)[i].data(), static_cast<std::streamsize>((*shares)[i].size()));
    if (!f) return 1;
  }
  std::printf("%s\n", caps::FormatCap(caps::MutableWriteCap(keys, caps::MutableFormat::kSdmf)).c_str());
  return 0;
}
