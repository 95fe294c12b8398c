#include "text/tokenizer_json.h"

#include "core/error.h"

namespace dsvl2 {
namespace {

using json = nlohmann::json;

class Sax : public nlohmann::json_sax<json> {
 public:
  Sax(json& root, BpeTables& t) : dom_(root, true), t_(t) {}
  std::string error;

  bool null() override { return value("null") && dom_.null(); }
  bool boolean(bool v) override { return value("a boolean") && dom_.boolean(v); }
  bool number_integer(number_integer_t v) override {
    if (mode_ == kVocab) return vocab_id(v);
    return value("a number") && dom_.number_integer(v);
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (mode_ == kVocab) return vocab_id(v > number_unsigned_t(INT64_MAX) ? INT64_MAX : number_integer_t(v));
    return value("a number") && dom_.number_unsigned(v);
  }
  bool number_float(number_float_t v, const string_t& s) override { return value("a number") && dom_.number_float(v, s); }
  bool binary(binary_t& b) override { return value("binary") && dom_.binary(b); }
  bool string(string_t& s) override {
    if (mode_ == kMerges) {
      size_t sp = s.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 >= s.size())
        return fail("merge " + std::to_string(t_.merges.size()) + " '" + s + "' is not two tokens separated by a space");
      t_.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      return true;
    }
    if (mode_ == kMergePair) {
      if (pair_.size() >= 2) return fail("merge " + std::to_string(t_.merges.size()) + " must be a pair of strings");
      pair_.push_back(std::move(s));
      return true;
    }
    return value("a string") && dom_.string(s);
  }
  bool start_object(std::size_t n) override {
    if (mode_ != kNone) return value("an object");
    if (depth_ == 2 && in_model_ && key_ == "vocab") {
      mode_ = kVocab;
      t_.has_vocab = true;
      return dom_.start_object(0);
    }
    if (depth_ == 1 && key_ == "model") in_model_ = true;
    depth_++;
    return dom_.start_object(n);
  }
  bool end_object() override {
    if (mode_ == kVocab) mode_ = kNone;
    else {
      depth_--;
      if (depth_ == 1) in_model_ = false;
    }
    return dom_.end_object();
  }
  bool start_array(std::size_t n) override {
    if (mode_ == kMerges) {
      mode_ = kMergePair;
      pair_.clear();
      return true;
    }
    if (mode_ != kNone) return value("an array");
    if (depth_ == 2 && in_model_ && key_ == "merges") {
      mode_ = kMerges;
      t_.has_merges = true;
      return dom_.start_array(0);
    }
    depth_++;
    return dom_.start_array(n);
  }
  bool end_array() override {
    if (mode_ == kMergePair) {
      if (pair_.size() != 2) return fail("merge " + std::to_string(t_.merges.size()) + " must be a pair of strings");
      t_.merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      mode_ = kMerges;
      return true;
    }
    if (mode_ == kMerges) mode_ = kNone;
    else depth_--;
    return dom_.end_array();
  }
  bool key(string_t& k) override {
    if (mode_ == kVocab) {
      vocab_key_ = std::move(k);
      return true;
    }
    key_ = k;
    return dom_.key(k);
  }
  bool parse_error(std::size_t pos, const std::string& tok, const nlohmann::detail::exception& e) override {
    return dom_.parse_error(pos, tok, e);
  }

 private:
  enum Mode { kNone, kVocab, kMerges, kMergePair };
  bool fail(std::string m) {
    error = std::move(m);
    return false;
  }
  // A value event while streaming a table is malformed input.
  bool value(const char* what) {
    if (mode_ == kVocab) return fail("vocab entry '" + vocab_key_ + "' has a non-integer id (" + what + ")");
    if (mode_ == kMerges || mode_ == kMergePair)
      return fail("merge " + std::to_string(t_.merges.size()) + " must be a string \"a b\" or a pair of strings");
    return true;
  }
  bool vocab_id(number_integer_t v) {
    t_.vocab.emplace_back(std::move(vocab_key_), v);
    return true;
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  BpeTables& t_;
  Mode mode_ = kNone;
  int depth_ = 0;
  bool in_model_ = false;
  std::string key_, vocab_key_;
  std::vector<std::string> pair_;
};

}  // namespace

json parse_tokenizer_json(std::string_view text, const std::string& where, BpeTables& tables) {
  json root;
  Sax sax(root, tables);
  bool ok = false;
  try {
    ok = json::sax_parse(text.begin(), text.end(), &sax);
  } catch (const json::exception& e) {
    DSVL2_FAIL("%s: not valid JSON: %s", where.c_str(), e.what());
  }
  if (!ok) {
    if (!sax.error.empty()) DSVL2_FAIL("%s: %s", where.c_str(), sax.error.c_str());
    DSVL2_FAIL("%s: not valid JSON", where.c_str());
  }
  return root;
}

}  // namespace dsvl2
