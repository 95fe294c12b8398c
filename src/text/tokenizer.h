// HF tokenizer.json (byte-level BPE, as shipped with DeepSeek-V2/V3 and
// DeepSeek-VL2) encode/decode, matching the Rust `tokenizers` crate:
// added tokens split first (AddedVocabulary), then the file's pre-tokenizer
// (PCRE2 with Oniguruma semantics), then BPE. DeepSeek-VL2's processor
// (DeepseekVLV2Processor.__init__) adds 8 special tokens on top; they are
// added at load unless TokenizerOptions::vl2_tokens is false.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "text/added_vocab.h"
#include "text/bpe.h"
#include "text/pretokenizer.h"

namespace dsvl2 {

struct TokenizerOptions {
  // Add <image>, <|ref|>, <|/ref|>, <|det|>, <|/det|>, <|grounding|>,
  // <|User|>, <|Assistant|> (in that order, when missing) as special tokens.
  bool vl2_tokens = true;
};

// The 8 tokens DeepseekVLV2Processor adds, in order.
const std::vector<std::string>& vl2_special_tokens();

class Tokenizer {
 public:
  // `path`: a tokenizer.json file or a folder holding one (a tokenizer_config.json
  // beside it, if present, names the BOS/EOS tokens). Throws Error.
  static Tokenizer load(const std::string& path, const TokenizerOptions& opt = {});
  // Parses tokenizer.json text; `where` names it in errors.
  static Tokenizer from_json_text(std::string_view json_text, const std::string& where,
                                  const TokenizerOptions& opt = {});

  // tokenizer.encode(text, add_special_tokens=False). `text` must be valid
  // UTF-8 (Error otherwise).
  std::vector<int32_t> encode(std::string_view text) const;
  void encode(std::string_view text, std::vector<int32_t>& out) const;  // appends

  // tokenizer.decode(ids, skip_special_tokens=...): ByteLevel decoder, invalid
  // UTF-8 replaced by U+FFFD (from_utf8_lossy). Unknown ids are skipped.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;
  // The raw bytes one id decodes to (before UTF-8 repair); empty if unknown.
  std::string_view id_bytes(int32_t id) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;  // added tokens, then vocab
  std::string id_to_token(int32_t id) const;                         // "" if unknown
  bool is_special(int32_t id) const;

  int32_t vocab_size() const { return id_limit_; }  // highest id + 1
  int32_t bos_id() const { return bos_id_; }        // -1 if the tokenizer has none
  int32_t eos_id() const { return eos_id_; }
  const AddedVocabulary& added() const { return added_; }

  // Adds a special token (normalized=false) if its content is not already an
  // added token, with the vocab id if it is in the vocab, else the next id.
  // Returns its id.
  int32_t add_special_token(const std::string& content);

 private:
  Tokenizer() = default;
  void encode_text(std::string_view text, std::vector<int32_t>& out) const;

  std::shared_ptr<BpeModel> model_;
  std::shared_ptr<PreTokenizer> pre_;
  AddedVocabulary added_;
  std::vector<std::string> decoded_;  // id -> bytes the ByteLevel decoder gives
  int32_t id_limit_ = 0;
  int32_t bos_id_ = -1, eos_id_ = -1;
};

// Incremental decoder for streaming generated text: push() returns only
// complete UTF-8 characters, holding back a sequence split across tokens;
// flush() returns the rest. The concatenation equals Tokenizer::decode.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special = false) : tok_(tok), skip_special_(skip_special) {}
  std::string push(int32_t id);
  std::string flush();

 private:
  const Tokenizer& tok_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace dsvl2
