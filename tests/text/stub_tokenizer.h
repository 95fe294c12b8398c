// A small byte-level BPE tokenizer.json for tests, shaped like the stub used
// for the golden model cases: bos 0, eos 1, pad 2, printable ASCII at 3..97
// (byte - 0x20 + 3), '\n' 98, byte 0x00 at 99, so that the DeepSeek-VL2 tokens
// get 100..107. `merges` ("a b" in the GPT-2 alphabet) add their merged token
// at 200, 201, ...; all_bytes adds the other 159 bytes at 300.. (for UTF-8 text).
#pragma once
#include <nlohmann/json.hpp>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "text/bpe.h"

namespace dsvl2::test {

inline nlohmann::json stub_tokenizer(const std::vector<std::string>& merges = {}, bool all_bytes = false) {
  using nlohmann::json;
  json vocab = json::object();
  for (int b = 0x20; b < 0x7f; b++) vocab[byte_level_encode(std::string(1, char(b)))] = b - 0x20 + 3;
  vocab[byte_level_encode("\n")] = 98;
  vocab[byte_level_encode(std::string(1, '\0'))] = 99;
  if (all_bytes) {
    int id = 300;
    for (int b = 1; b < 256; b++)
      if ((b < 0x20 || b >= 0x7f) && b != '\n') vocab[byte_level_encode(std::string(1, char(b)))] = id++;
  }
  int next = 200;
  for (const auto& m : merges) {
    auto sp = m.find(' ');
    vocab[m.substr(0, sp) + m.substr(sp + 1)] = next++;
  }
  json added = json::array();
  const char* names[] = {"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>"};
  for (int i = 0; i < 3; i++)
    added.push_back({{"id", i}, {"content", names[i]}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  json split = {{"type", "Split"},
                {"pattern", {{"Regex", "\\p{N}{1,3}| ?\\p{L}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"}}},
                {"behavior", "Isolated"},
                {"invert", false}};
  json bl = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}};
  return {{"version", "1.0"},
          {"added_tokens", added},
          {"normalizer", {{"type", "Sequence"}, {"normalizers", json::array()}}},
          {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", {split, bl}}}},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
          {"model",
           {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"vocab", vocab}, {"merges", merges}}}};
}

// The stub's ids of plain ASCII text (no merges), and ids run together.
inline std::vector<int32_t> stub_ascii(std::string_view s) {
  std::vector<int32_t> v;
  for (char c : s) v.push_back(c == '\n' ? 98 : int32_t(uint8_t(c)) - 0x20 + 3);
  return v;
}
inline std::vector<int32_t> stub_cat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> v;
  for (const auto& p : parts) v.insert(v.end(), p.begin(), p.end());
  return v;
}

}  // namespace dsvl2::test
