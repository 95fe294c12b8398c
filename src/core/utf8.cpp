#include "core/utf8.h"

namespace dsvl2::utf8 {
namespace {

// Length of the valid sequence at s[i]; 0 when the bytes there are not a valid
// sequence (then *bad = length of the maximal invalid subpart, >= 1), or when
// the input ends inside a sequence that is valid so far (*bad = 0).
size_t seq_len(std::string_view s, size_t i, size_t* bad) {
  const auto b0 = uint8_t(s[i]);
  if (b0 < 0x80) return 1;
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    *bad = 1;
    return 0;
  }
  for (size_t k = 1; k < need; k++) {
    if (i + k >= s.size()) {
      *bad = 0;  // truncated, valid so far
      return 0;
    }
    const auto b = uint8_t(s[i + k]);
    const bool ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) {
      *bad = k;
      return 0;
    }
  }
  return need;
}

}  // namespace

size_t sequence_length(std::string_view s, size_t i) {
  size_t bad = 0;
  return i < s.size() ? seq_len(s, i, &bad) : 0;
}

size_t find_invalid(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (uint8_t(s[i]) < 0x80) {
      i++;
      continue;
    }
    size_t bad = 0;
    size_t n = seq_len(s, i, &bad);
    if (!n) return i;
    i += n;
  }
  return std::string_view::npos;
}

uint32_t next(std::string_view s, size_t& i) {
  const auto b0 = uint8_t(s[i]);
  if (b0 < 0x80) {
    i++;
    return b0;
  }
  auto cont = [&](size_t k) { return uint32_t(uint8_t(s[i + k]) & 0x3F); };
  uint32_t cp;
  if (b0 < 0xE0) {
    cp = (uint32_t(b0 & 0x1F) << 6) | cont(1);
    i += 2;
  } else if (b0 < 0xF0) {
    cp = (uint32_t(b0 & 0x0F) << 12) | (cont(1) << 6) | cont(2);
    i += 3;
  } else {
    cp = (uint32_t(b0 & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3);
    i += 4;
  }
  return cp;
}

void append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

size_t lossy_append(std::string_view s, std::string& out, bool final) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  size_t i = 0, run = 0;  // [run, i) is valid and not yet copied
  while (i < s.size()) {
    if (uint8_t(s[i]) < 0x80) {
      i++;
      continue;
    }
    size_t bad = 0;
    size_t n = seq_len(s, i, &bad);
    if (n) {
      i += n;
      continue;
    }
    out.append(s.substr(run, i - run));
    if (bad == 0) {  // truncated at the end of the input
      if (!final) return i;
      out.append(kReplacement);
      return s.size();
    }
    out.append(kReplacement);
    i += bad;
    run = i;
  }
  out.append(s.substr(run, i - run));
  return s.size();
}

bool is_python_space(uint32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
  if (cp < 0x85) return false;
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
         cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

std::string_view python_strip(std::string_view s) {
  // Leading: decode forward.
  size_t b = 0;
  while (b < s.size()) {
    size_t j = b;
    if (!is_python_space(next(s, j))) break;
    b = j;
  }
  // Trailing: step back to each code point start.
  size_t e = s.size();
  while (e > b) {
    size_t st = e - 1;
    while (st > b && (uint8_t(s[st]) & 0xC0) == 0x80) st--;
    size_t j = st;
    if (!is_python_space(next(s, j))) break;
    e = st;
  }
  return s.substr(b, e - b);
}

}  // namespace dsvl2::utf8
