#include "core/base64.h"

#include <string>

#include "core/error.h"

namespace dsvl2 {
namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
int value_of(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}
}  // namespace

std::vector<uint8_t> base64_decode(std::string_view s, size_t max_bytes) {
  if (s.size() % 4 != 0) DSVL2_FAIL("base64: length %zu is not a multiple of 4", s.size());
  size_t pad = 0;
  if (!s.empty() && s.back() == '=') pad = s.size() >= 2 && s[s.size() - 2] == '=' ? 2 : 1;
  const size_t out_size = s.size() / 4 * 3 - pad;
  if (out_size > max_bytes) DSVL2_FAIL("base64: %zu decoded bytes, more than the %zu allowed", out_size, max_bytes);
  std::vector<uint8_t> out;
  out.reserve(out_size);
  for (size_t i = 0; i < s.size(); i += 4) {
    int v[4];
    for (int j = 0; j < 4; j++) {
      const size_t at = i + size_t(j);
      const bool padding = at >= s.size() - pad;
      v[j] = padding ? 0 : value_of(s[at]);
      if (v[j] < 0) DSVL2_FAIL("base64: invalid character at offset %zu", at);
    }
    const uint32_t bits = uint32_t(v[0]) << 18 | uint32_t(v[1]) << 12 | uint32_t(v[2]) << 6 | uint32_t(v[3]);
    out.push_back(uint8_t(bits >> 16));
    if (out.size() < out_size) out.push_back(uint8_t(bits >> 8));
    if (out.size() < out_size) out.push_back(uint8_t(bits));
  }
  // Non-canonical padding bits would let two strings name the same bytes.
  if (pad > 0) {
    const int last = value_of(s[s.size() - pad - 1]);
    if ((pad == 1 && (last & 3)) || (pad == 2 && (last & 15)))
      DSVL2_FAIL("base64: non-zero bits in the padding at offset %zu", s.size() - pad - 1);
  }
  return out;
}

std::string base64_encode(const uint8_t* data, size_t n) {
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    uint32_t bits = uint32_t(data[i]) << 16;
    if (i + 1 < n) bits |= uint32_t(data[i + 1]) << 8;
    if (i + 2 < n) bits |= data[i + 2];
    out += kAlphabet[bits >> 18 & 63];
    out += kAlphabet[bits >> 12 & 63];
    out += i + 1 < n ? kAlphabet[bits >> 6 & 63] : '=';
    out += i + 2 < n ? kAlphabet[bits & 63] : '=';
  }
  return out;
}

}  // namespace dsvl2
