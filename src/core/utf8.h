// The project's one UTF-8 codec: strict validation (no overlong forms, no
// surrogates, nothing above U+10FFFF, as Rust's str::from_utf8), Rust-style
// lossy decoding (String::from_utf8_lossy, one U+FFFD per maximal invalid
// subpart, which the HF ByteLevel decoder applies), and Python's str.strip()
// whitespace set. Every stage that meets untrusted bytes (tokenizer,
// safetensors headers, tar names, EXIF strings, OCR output, labels) builds
// its own policy (replace, drop, escape) on these.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dsvl2::utf8 {

// Length (1-4) of the valid UTF-8 sequence at s[i], or 0 when the bytes there
// are not one (invalid, or cut off by the end of s).
size_t sequence_length(std::string_view s, size_t i);

// Byte offset of the first invalid UTF-8 sequence, or npos when valid.
size_t find_invalid(std::string_view s);
inline bool is_valid(std::string_view s) { return find_invalid(s) == std::string_view::npos; }

// Decodes the code point at s[i] (s must be valid UTF-8) and advances i.
uint32_t next(std::string_view s, size_t& i);
void append(std::string& out, uint32_t cp);

// Converts bytes to valid UTF-8 as Rust's from_utf8_lossy does. When `final`
// is false, an incomplete sequence at the end that could still become valid is
// left unconsumed: the return value is how many input bytes were consumed.
size_t lossy_append(std::string_view bytes, std::string& out, bool final);
inline std::string lossy(std::string_view bytes) {
  std::string out;
  lossy_append(bytes, out, true);
  return out;
}

// Python str.isspace() for one code point, and str.strip() on UTF-8 text.
bool is_python_space(uint32_t cp);
std::string_view python_strip(std::string_view s);

}  // namespace dsvl2::utf8
