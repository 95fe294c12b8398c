// A small byte-level BPE tokenizer.json for tests, shaped like the stub used
// for the golden model cases: bos 0, eos 1, pad 2, printable ASCII at 3..97
// (byte - 0x20 + 3), '\n' 98, byte 0x00 at 99, so that the DeepSeek-VL2 tokens
// get 100..107. `merges` ("a b" in the GPT-2 alphabet) add their merged token
// at 200, 201, ...
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "text/bpe.h"

namespace dsvl2::test {

inline nlohmann::json stub_tokenizer(const std::vector<std::string>& merges = {}) {
  using nlohmann::json;
  json vocab = json::object();
  for (int b = 0x20; b < 0x7f; b++) vocab[byte_level_encode(std::string(1, char(b)))] = b - 0x20 + 3;
  vocab[byte_level_encode("\n")] = 98;
  vocab[byte_level_encode(std::string(1, '\0'))] = 99;
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

}  // namespace dsvl2::test
