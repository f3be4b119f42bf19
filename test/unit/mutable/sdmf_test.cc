// SDMF shares: the byte layout of tahoe-protocol.md 3.6, round trips from
// every k-subset, the empty file, and tampering detected at each check.
#include <gtest/gtest.h>

#include <cjson/cJSON.h>

#include <thread>

#include "cairn/caps/keys.h"
#include "cairn/crypto/rsa.h"
#include "cairn/mutable/sdmf.h"
#include "support/vectors.h"
#include "unit/mutable/vector_key.h"

namespace cairn::mutable_files {
namespace {

std::vector<std::string> Publish(std::string_view plaintext, std::uint32_t k, std::uint32_t n, std::uint64_t seq) {
  const VectorKey& f = F();
  auto enc = SdmfEncoding::Encode(f.keys.readkey, f.pub, caps::CryptPrivateKey(f.keys.writekey, f.key.PrivatePkcs8Der()),
                                  plaintext, k, n, seq, std::string(16, '\x42'));
  EXPECT_TRUE(enc.ok()) << enc.status().ToString();
  EXPECT_EQ(enc->signed_prefix().size(), kSdmfSignedPrefixSize);
  auto sig = f.key.Sign(enc->signed_prefix());
  EXPECT_TRUE(sig.ok());
  auto shares = enc->Shares(*sig);
  EXPECT_TRUE(shares.ok());
  return *shares;
}

TEST(Sdmf, LayoutOffsetsAsSpecified) {
  std::vector<std::string> shares = Publish("hello, mutable world", 3, 10, 1);
  ASSERT_EQ(shares.size(), 10u);
  auto s = ParseSdmfShare(shares[4]);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(shares[4][0], '\0');
  EXPECT_EQ(s->seqnum, 1u);
  EXPECT_EQ(s->k, 3u);
  EXPECT_EQ(s->n, 10u);
  EXPECT_EQ(s->data_length, 20u);
  EXPECT_EQ(s->segment_size, 21u);  // rounded up to a multiple of k
  EXPECT_EQ(s->pubkey.size(), 294u);
  EXPECT_EQ(s->share_hash_chain.size(), 4u);  // log2(16): own leaf excluded
  EXPECT_EQ(s->block.size(), 7u);
  EXPECT_EQ(s->iv, std::string(16, '\x42'));
  // Fixed offsets: signature at 107 + 294, chain 256 later.
  auto be32 = [&](std::size_t at) {
    return (static_cast<std::uint8_t>(shares[4][at]) << 24) | (static_cast<std::uint8_t>(shares[4][at + 1]) << 16) |
           (static_cast<std::uint8_t>(shares[4][at + 2]) << 8) | static_cast<std::uint8_t>(shares[4][at + 3]);
  };
  EXPECT_EQ(be32(75), 401u);
  EXPECT_EQ(be32(79), 657u);
  EXPECT_EQ(be32(83), 657u + 4 * 34);
  // The private key decrypts with the writekey to the exact PKCS#8 bytes.
  EXPECT_EQ(caps::CryptPrivateKey(F().keys.writekey, s->encprivkey), F().key.PrivatePkcs8Der());
}

TEST(Sdmf, EveryShareVerifiesAndEveryKSubsetDecodes) {
  std::string plaintext(1000, '\0');
  for (std::size_t i = 0; i < plaintext.size(); ++i) plaintext[i] = static_cast<char>(i * 7 + 1);
  std::vector<std::string> raw = Publish(plaintext, 2, 4, 5);
  std::vector<SdmfShare> parsed;
  for (std::uint32_t i = 0; i < raw.size(); ++i) {
    auto s = ParseSdmfShare(raw[i]);
    ASSERT_TRUE(s.ok());
    EXPECT_TRUE(VerifySdmfShare(*s, i, F().keys.fingerprint).ok()) << i;
    parsed.push_back(*s);
  }
  for (std::uint32_t a = 0; a < 4; ++a) {
    for (std::uint32_t b = a + 1; b < 4; ++b) {
      auto out = DecodeSdmf({{a, &parsed[a]}, {b, &parsed[b]}}, F().keys.readkey);
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      EXPECT_EQ(*out, plaintext) << a << "," << b;
    }
  }
  EXPECT_FALSE(DecodeSdmf({{0, &parsed[0]}}, F().keys.readkey).ok());
}

TEST(Sdmf, EmptyFileAndOneOfOne) {
  std::vector<std::string> raw = Publish("", 3, 10, 1);
  auto s = ParseSdmfShare(raw[0]);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->segment_size, 0u);
  EXPECT_TRUE(s->block.empty());
  EXPECT_TRUE(VerifySdmfShare(*s, 0, F().keys.fingerprint).ok());
  auto s1 = ParseSdmfShare(raw[1]), s2 = ParseSdmfShare(raw[2]);
  auto empty = DecodeSdmf({{0, &*s}, {1, &*s1}, {2, &*s2}}, F().keys.readkey);
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(*empty, "");
  std::vector<std::string> one = Publish("x", 1, 1, 9);
  auto o = ParseSdmfShare(one[0]);
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->share_hash_chain.empty());
  EXPECT_TRUE(VerifySdmfShare(*o, 0, F().keys.fingerprint).ok());
  EXPECT_EQ(*DecodeSdmf({{0, &*o}}, F().keys.readkey), "x");
}

TEST(Sdmf, TamperingIsCaught) {
  std::vector<std::string> raw = Publish("some data worth keeping", 3, 10, 2);
  auto check = [&](std::string bytes, std::uint32_t shnum) {
    auto s = ParseSdmfShare(bytes);
    if (!s.ok()) return s.status().code();
    return VerifySdmfShare(*s, shnum, F().keys.fingerprint).code();
  };
  EXPECT_EQ(check(raw[3], 3), Code::kOk);
  EXPECT_EQ(check(raw[3], 4), Code::kIntegrity);  // the chain is share 3's
  std::string block = raw[3];
  block[block.size() - 1300] ^= 1;  // inside the block or the hashes before the private key
  EXPECT_EQ(check(block, 3), Code::kIntegrity);
  std::string seq = raw[3];
  seq[8] ^= 1;  // the sequence number is signed
  EXPECT_EQ(check(seq, 3), Code::kIntegrity);
  std::string sig = raw[3];
  sig[500] ^= 1;
  EXPECT_EQ(check(sig, 3), Code::kIntegrity);
  EXPECT_FALSE(VerifySdmfShare(*ParseSdmfShare(raw[3]), 3, std::string(32, 'f')).ok());  // another file's cap
  EXPECT_EQ(check(raw[3].substr(0, 100), 3), Code::kInvalidArgument);
  std::string v1 = raw[3];
  v1[0] = 1;
  EXPECT_EQ(check(v1, 3), Code::kInvalidArgument);
}

// The steps the publisher spreads over threads (blocks, hashes of two
// halves at once, seal, layout of two halves at once, then the signature)
// give byte for byte the shares of Encode + Shares; SetSignature refuses a
// signature of the wrong size or a share too short to hold one.
TEST(Sdmf, StepsOnThreadsGiveTheSameShares) {
  const VectorKey& f = F();
  std::string plaintext(100003, '\0');
  for (std::size_t i = 0; i < plaintext.size(); ++i) plaintext[i] = static_cast<char>(i * 7919 % 251);
  const std::string encpriv = caps::CryptPrivateKey(f.keys.writekey, f.key.PrivatePkcs8Der());
  auto at_once = SdmfEncoding::Encode(f.keys.readkey, f.pub, encpriv, plaintext, 3, 10, 7, std::string(16, '\x42'));
  ASSERT_TRUE(at_once.ok()) << at_once.status().ToString();

  auto enc = SdmfEncoding::EncodeBlocks(f.keys.readkey, f.pub, encpriv, plaintext, 3, 10, 7, std::string(16, '\x42'));
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  std::thread first([&] { enc->HashBlocks(0, 5); });
  enc->HashBlocks(5, 10);
  first.join();
  enc->Seal();
  ASSERT_EQ(enc->signed_prefix(), at_once->signed_prefix());
  auto sig = f.key.Sign(enc->signed_prefix());  // PSS is randomized: one signature for both
  ASSERT_TRUE(sig.ok());
  auto whole = at_once->Shares(*sig);
  ASSERT_TRUE(whole.ok());
  std::vector<std::string> shares(10);
  std::thread lay([&] { enc->LayOut(0, 5, &shares); });
  enc->LayOut(5, 10, &shares);
  lay.join();
  EXPECT_NE(shares[3], (*whole)[3]);  // a zero signature until it is set
  for (std::string& s : shares) ASSERT_TRUE(SdmfEncoding::SetSignature(s, *sig).ok());
  EXPECT_EQ(shares, *whole);
  for (std::uint32_t i = 0; i < 10; ++i) {
    auto parsed = ParseSdmfShare(shares[i]);
    ASSERT_TRUE(parsed.ok());
    EXPECT_TRUE(VerifySdmfShare(*parsed, i, f.keys.fingerprint).ok()) << i;
  }

  EXPECT_EQ(SdmfEncoding::SetSignature(shares[0], sig->substr(1)).code(), Code::kInvalidArgument);
  std::string short_share = (*whole)[0].substr(0, 200);
  EXPECT_EQ(SdmfEncoding::SetSignature(short_share, *sig).code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace cairn::mutable_files
