// Text helpers shared by the OCR engine and the OCR check: UTF-8 checking,
// the normalised form that quotes and OCR text are compared in, and a
// normalised edit distance.
//
//   normalize_text("  “Café—OPEN!” ") == U"café-open"
//   similarity(U"summer sale", U"sumer sale") == 1 - 1/11.0
#pragma once
#include <string>
#include <string_view>

namespace dsvl2::ocr {

// Strict UTF-8: no overlong forms, surrogates, code points over U+10FFFF or
// truncated sequences.
bool valid_utf8(std::string_view s);
// `s` with every byte that is not part of a valid sequence dropped.
std::string sanitize_utf8(std::string_view s);
// Code points of `s`; invalid bytes are skipped.
std::u32string decode_utf8(std::string_view s);
std::string encode_utf8(std::u32string_view s);

// A letter or digit: ASCII alnum, or a code point >= U+00C0 outside the
// punctuation, symbol and space blocks (an approximation of Unicode's L/N
// classes that is enough for Latin, Greek, Cyrillic and CJK text).
bool is_word_char(char32_t c);
int count_word_chars(std::u32string_view s);

// The form quotes and OCR text are compared in:
//  * typographic quotes, apostrophes and primes -> ' or "; dashes and minus
//    signs -> -; ellipsis -> ...; ligatures (fi, fl, ...) split; full-width
//    ASCII -> ASCII; zero-width characters and soft hyphens removed;
//  * lower case (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic);
//  * every run of white space (any Unicode space) -> one space;
//  * everything that is not a letter or digit stripped from both ends
//    (quotes, full stops, commas, brackets, dashes, ...).
// Inner punctuation stays: it is part of the text ("wi-fi", "50%").
std::u32string normalize_text(std::u32string_view s);
inline std::u32string normalize_text(std::string_view s) { return normalize_text(decode_utf8(s)); }

// Levenshtein distance over code points.
int edit_distance(std::u32string_view a, std::u32string_view b);
// The same when it is at most max_d, else max_d + 1, in O(max_d * max(|a|, |b|)).
int edit_distance_within(std::u32string_view a, std::u32string_view b, int max_d);
// 1 - edit_distance / max(|a|, |b|), in [0, 1]; the better of that and the
// same with spaces removed (OCR splits and joins words: "BIRTH DAY").
// Returns 0 without computing when even equal content could not reach
// `at_least` (the length difference alone rules it out).
double similarity(std::u32string_view a, std::u32string_view b, double at_least = 0);

}  // namespace dsvl2::ocr
