// Base64 (RFC 4648): the standard alphabet with padding (HTTP Authorization
// and X-Tahoe-Authorization values, vectors) and the URL-safe alphabet
// without padding (SPKI hashes in NURLs). Pure functions: any thread.
#pragma once

#include <string>
#include <string_view>

#include "cairn/core/status.h"

namespace cairn::crypto {

std::string Base64Encode(std::string_view bytes);
// InvalidArgument on anything but well-formed padded standard base64.
Result<std::string> Base64Decode(std::string_view text);
std::string Base64UrlNoPadEncode(std::string_view bytes);
// InvalidArgument on characters outside [A-Za-z0-9_-] or a length no
// encoding produces.
Result<std::string> Base64UrlNoPadDecode(std::string_view text);

}  // namespace cairn::crypto
