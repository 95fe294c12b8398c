// Fast reading of tokenizer.json: a SAX pass that builds the JSON tree for
// everything except model.vocab and model.merges (about 255k entries in the
// DeepSeek files), which are streamed straight into flat tables.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace dsvl2 {

struct BpeTables {
  bool has_vocab = false, has_merges = false;
  std::vector<std::pair<std::string, int64_t>> vocab;
  std::vector<std::pair<std::string, std::string>> merges;  // "a b" already split
};

// Parses `text`; model.vocab / model.merges (when an object / array) go to
// `tables` and are left empty in the returned tree. Throws Error naming `where`.
nlohmann::json parse_tokenizer_json(std::string_view text, const std::string& where, BpeTables& tables);

}  // namespace dsvl2
