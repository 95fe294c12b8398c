// Added tokens (tokenizer.json "added_tokens" and tokens added at load), split
// out of the input before the pre-tokenizer as HF AddedVocabulary does
// (added_vocabulary.rs): first the tokens with normalized=false on the raw
// text, then those with normalized=true on what is left; each pass takes the
// leftmost match, the longest at that position, and honours the
// single_word / lstrip / rstrip flags.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace dsvl2 {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool single_word = false, lstrip = false, rstrip = false;
  bool normalized = true;
};

class AddedVocabulary {
 public:
  // A piece of the input: an added token (id >= 0) or text to tokenize (id -1).
  struct Segment {
    int32_t id;
    size_t begin, end;
  };

  void add(AddedToken t);  // a token with the same content replaces nothing: callers check first
  const AddedToken* find(std::string_view content) const;
  const AddedToken* by_id(int32_t id) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

  void split(std::string_view text, std::vector<Segment>& out) const;

 private:
  struct Trie {
    std::unordered_map<uint64_t, int32_t> edges;  // (node << 8 | byte) -> node
    std::vector<int32_t> terminal = {-1};         // node -> index into tokens_, -1 if none
    bool first[256] = {};
    void insert(std::string_view s, int32_t token_index);
    // Longest token starting at text[pos]: (token index, end) or (-1, pos).
    std::pair<int32_t, size_t> longest(std::string_view text, size_t pos) const;
  };
  void find_matches(const Trie& trie, std::string_view text, size_t base, std::vector<Segment>& out) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<std::string, size_t> by_content_;
  std::unordered_map<int32_t, size_t> by_id_;
  Trie raw_trie_, normalized_trie_;
};

}  // namespace dsvl2
