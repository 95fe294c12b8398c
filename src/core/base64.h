// Strict standard base64 (RFC 4648 section 4), as data: URLs carry images.
// Hand-written: a dozen lines, and the Debian libraries that have one
// (OpenSSL's EVP_DecodeBlock) accept garbage after padding and pad output.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

namespace dsvl2 {

// Decodes `s` (padding required, no whitespace). Throws Error naming the
// first bad character's offset. `max_bytes`: larger output is an Error
// found before anything is decoded.
std::vector<uint8_t> base64_decode(std::string_view s, size_t max_bytes = SIZE_MAX);
std::string base64_encode(const uint8_t* data, size_t n);

}  // namespace dsvl2
