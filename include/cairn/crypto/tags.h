// Every hash tag Tahoe-LAFS uses for files (tahoe-protocol.md, section 3.2).
// A tag names what a hash is for, so that a value hashed for one purpose can
// never be mistaken for another. Spelled exactly as Tahoe spells them.
#pragma once

#include <string_view>

namespace cairn::crypto::tags {

// Mutable files (SSK): key derivations.
inline constexpr std::string_view kWriteKey = "allmydata_mutable_privkey_to_writekey_v1";
inline constexpr std::string_view kWriteEnablerMaster = "allmydata_mutable_writekey_to_write_enabler_master_v1";
inline constexpr std::string_view kWriteEnabler =
    "allmydata_mutable_write_enabler_master_and_nodeid_to_write_enabler_v1";
inline constexpr std::string_view kPubkeyFingerprint = "allmydata_mutable_pubkey_to_fingerprint_v1";
inline constexpr std::string_view kReadKey = "allmydata_mutable_writekey_to_readkey_v1";
inline constexpr std::string_view kDataKey = "allmydata_mutable_readkey_to_datakey_v1";
inline constexpr std::string_view kMutableStorageIndex = "allmydata_mutable_readkey_to_storage_index_v1";

// Immutable files (CHK).
inline constexpr std::string_view kImmutableStorageIndex = "allmydata_immutable_key_to_storage_index_v1";
inline constexpr std::string_view kConvergentKeyPrefix = "allmydata_immutable_content_to_key_with_added_secret_v1+";
inline constexpr std::string_view kUriExtension = "allmydata_uri_extension_v1";
inline constexpr std::string_view kCrypttext = "allmydata_crypttext_v1";
inline constexpr std::string_view kCrypttextSegment = "allmydata_crypttext_segment_v1";
inline constexpr std::string_view kPlaintext = "allmydata_plaintext_v1";
inline constexpr std::string_view kPlaintextSegment = "allmydata_plaintext_segment_v1";

// Both: an erasure-coded block, and the Merkle trees over block hashes.
inline constexpr std::string_view kBlock = "allmydata_encoded_subshare_v1";
inline constexpr std::string_view kMerkleEmptyLeaf = "Merkle tree empty leaf";
inline constexpr std::string_view kMerkleInternalNode = "Merkle tree internal node";

// Lease secrets, from the client's secret down to one server's bucket.
inline constexpr std::string_view kClientRenewal = "allmydata_client_renewal_secret_v1";
inline constexpr std::string_view kClientCancel = "allmydata_client_cancel_secret_v1";
inline constexpr std::string_view kFileRenewal = "allmydata_file_renewal_secret_v1";
inline constexpr std::string_view kFileCancel = "allmydata_file_cancel_secret_v1";
inline constexpr std::string_view kBucketRenewal = "allmydata_bucket_renewal_secret_v1";
inline constexpr std::string_view kBucketCancel = "allmydata_bucket_cancel_secret_v1";

}  // namespace cairn::crypto::tags
