// Byte-level BPE model (HF tokenizers models/bpe, GPT-2 byte alphabet).
// Tokens are kept as raw bytes: the GPT-2 byte->unicode mapping is undone once
// at load, so encoding works on the input bytes directly. Merges are applied
// lowest rank first, leftmost first on ties (word.rs merge_all), with a
// priority queue and an open-addressing pair->(rank, id) table; results are
// cached per word.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace dsvl2 {

// GPT-2 bytes_to_unicode(): the code point that stands for byte b.
uint32_t byte_to_unicode(uint8_t b);
// The inverse; -1 for code points outside the table.
int unicode_to_byte(uint32_t cp);
// Maps a GPT-2-alphabet token string to raw bytes; nullopt when a character is
// outside the table.
std::optional<std::string> byte_level_decode(std::string_view token);
// Raw bytes to the GPT-2 alphabet (UTF-8).
std::string byte_level_encode(std::string_view bytes);

class BpeModel {
 public:
  // Parses tokenizer.json's "model" (type BPE). Throws Error naming `where`.
  static BpeModel from_json(const nlohmann::json& model, const std::string& where);
  BpeModel();
  ~BpeModel();
  BpeModel(BpeModel&&) noexcept;
  BpeModel& operator=(BpeModel&&) noexcept;

  // Appends the ids of one pre-tokenized piece (raw bytes).
  void encode_word(std::string_view bytes, std::vector<int32_t>& out) const;

  // Vocab strings as written in the file (GPT-2 alphabet); empty if no token.
  const std::string& token(int32_t id) const;
  std::optional<int32_t> token_to_id(std::string_view tok) const;
  int32_t id_limit() const { return int32_t(tokens_.size()); }  // max id + 1
  size_t vocab_size() const { return vocab_.size(); }
  size_t merges_size() const { return n_merges_; }

 private:
  struct PairSlot {
    uint64_t key = ~uint64_t(0);
    int32_t rank = 0, id = 0;
  };
  const PairSlot* find_pair(int32_t a, int32_t b) const;
  void insert_pair(int32_t a, int32_t b, int32_t rank, int32_t id);
  void merge_word(std::string_view bytes, std::vector<int32_t>& out) const;

  std::unordered_map<std::string, int32_t> vocab_;   // file strings
  std::unordered_map<std::string, int32_t> by_bytes_;  // raw bytes -> id
  std::vector<std::string> tokens_;
  int32_t byte_id_[256];
  std::vector<PairSlot> pairs_;
  uint64_t pair_mask_ = 0;
  size_t n_merges_ = 0;
  bool ignore_merges_ = false;

  struct Cache;  // word -> ids, bounded, thread-safe
  std::unique_ptr<Cache> cache_;
};

}  // namespace dsvl2
