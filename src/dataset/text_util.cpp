#include "dataset/text_util.h"

#include <locale.h>

#include <cstdint>
#include <cstdio>

#include "core/utf8.h"

namespace dsvl2::dataset::detail {

std::string printable(std::string_view s, size_t max_bytes) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (out.size() >= max_bytes) {
      out += "...";
      break;
    }
    const size_t n = utf8::sequence_length(s, i);
    const auto c = uint8_t(s[i]);
    if (n == 0 || c < 0x20 || c == 0x7F) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", c);
      out += hex;
      i++;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

namespace {
locale_t utf8_locale() {
  // Made once and kept: uselocale() needs it alive while any thread uses it.
  static const locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", locale_t(0));
  return loc;
}
}  // namespace

ScopedUtf8Locale::ScopedUtf8Locale() {
  if (locale_t loc = utf8_locale()) previous_ = uselocale(loc);
}

ScopedUtf8Locale::~ScopedUtf8Locale() {
  if (previous_) uselocale(static_cast<locale_t>(previous_));
}

}  // namespace dsvl2::dataset::detail
