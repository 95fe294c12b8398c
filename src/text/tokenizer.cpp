#include "text/tokenizer.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file.h"
#include "text/tokenizer_json.h"
#include "core/utf8.h"

namespace dsvl2 {
namespace {

using json = nlohmann::json;

constexpr const char* kDefaultBos = "<｜begin▁of▁sentence｜>";
constexpr const char* kDefaultEos = "<｜end▁of▁sentence｜>";

// Only the identity normalizer is supported (what DeepSeek files carry).
void check_normalizer(const json& j, const std::string& where, int depth = 0) {
  if (j.is_null()) return;
  if (depth > 8 || !j.is_object()) DSVL2_FAIL("%s: malformed 'normalizer'", where.c_str());
  auto t = j.find("type");
  if (t == j.end() || !t->is_string()) DSVL2_FAIL("%s: normalizer without a string 'type'", where.c_str());
  if (t->get<std::string>() != "Sequence")
    DSVL2_FAIL("%s: unsupported normalizer '%s'", where.c_str(), t->get<std::string>().c_str());
  auto n = j.find("normalizers");
  if (n == j.end() || !n->is_array()) DSVL2_FAIL("%s: Sequence normalizer needs a 'normalizers' array", where.c_str());
  for (const auto& s : *n) check_normalizer(s, where, depth + 1);
}

// The ByteLevel decoder (decoders/byte_level.rs), possibly inside a Sequence.
void check_decoder(const json& j, const std::string& where) {
  if (!j.is_object()) DSVL2_FAIL("%s: 'decoder' must be a ByteLevel decoder object", where.c_str());
  auto t = j.find("type");
  if (t == j.end() || !t->is_string()) DSVL2_FAIL("%s: decoder without a string 'type'", where.c_str());
  const std::string type = t->get<std::string>();
  if (type == "ByteLevel") return;
  if (type == "Sequence") {
    auto d = j.find("decoders");
    if (d != j.end() && d->is_array() && d->size() == 1) return check_decoder((*d)[0], where);
  }
  DSVL2_FAIL("%s: unsupported decoder '%s' (only ByteLevel)", where.c_str(), type.c_str());
}

bool flag(const json& o, const char* key, bool def, const std::string& where) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return def;
  if (!it->is_boolean()) DSVL2_FAIL("%s: added token field '%s' must be a boolean", where.c_str(), key);
  return it->get<bool>();
}

// ByteLevel decoder rule for one token string: GPT-2 alphabet -> bytes, or the
// token's own UTF-8 when a character is outside the alphabet.
std::string decoder_bytes(const std::string& token) {
  if (auto b = byte_level_decode(token)) return *b;
  return token;
}

// bos_token / eos_token of tokenizer_config.json: a string or {"content": ...}.
std::string config_token(const json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object())
    if (auto c = it->find("content"); c != it->end() && c->is_string()) return c->get<std::string>();
  return "";
}

}  // namespace

const std::vector<std::string>& vl2_special_tokens() {
  static const std::vector<std::string> t = {"<image>",       "<|ref|>",  "<|/ref|>", "<|det|>",
                                             "<|/det|>",      "<|grounding|>", "<|User|>", "<|Assistant|>"};
  return t;
}

Tokenizer Tokenizer::load(const std::string& path, const TokenizerOptions& opt) {
  std::string file = path;
  std::string dir;
  if (is_directory(path)) {
    dir = path;
    file = path_join(path, "tokenizer.json");
    if (!file_exists(file)) DSVL2_FAIL("%s: no tokenizer.json in this folder", path.c_str());
  } else {
    if (!file_exists(path)) DSVL2_FAIL("%s: no such file", path.c_str());
    auto slash = path.find_last_of('/');
    dir = slash == std::string::npos ? "." : path.substr(0, slash);
  }
  MappedFile mf(file);
  Tokenizer t = from_json_text(std::string_view(reinterpret_cast<const char*>(mf.data()), mf.size()), file, opt);
  // Special-token names from tokenizer_config.json beside the file, if any.
  const std::string cfg_path = path_join(dir, "tokenizer_config.json");
  if (file_exists(cfg_path)) {
    json cfg = json::parse(read_file(cfg_path), nullptr, /*allow_exceptions=*/false);
    if (cfg.is_object()) {
      if (auto b = config_token(cfg, "bos_token"); !b.empty())
        if (auto id = t.token_to_id(b)) t.bos_id_ = *id;
      if (auto e = config_token(cfg, "eos_token"); !e.empty())
        if (auto id = t.token_to_id(e)) t.eos_id_ = *id;
    }
  }
  return t;
}

Tokenizer Tokenizer::from_json_text(std::string_view text, const std::string& where, const TokenizerOptions& opt) {
  const char* w = where.c_str();
  BpeTables tables;
  json j = parse_tokenizer_json(text, where, tables);
  if (!j.is_object() || !j.contains("model"))
    DSVL2_FAIL("%s: not a tokenizer.json (no 'model' object)", w);
  Tokenizer t;
  try {
    check_normalizer(j.value("normalizer", json()), where);
    t.pre_ = std::make_shared<PreTokenizer>(PreTokenizer::from_json(j.value("pre_tokenizer", json()), where));
    if (!t.pre_->has_byte_level()) DSVL2_FAIL("%s: pre_tokenizer has no ByteLevel step (not a byte-level BPE)", w);
    if (!j.contains("decoder")) DSVL2_FAIL("%s: no 'decoder'", w);
    check_decoder(j["decoder"], where);
    t.model_ = std::make_shared<BpeModel>(BpeModel::from_json(j["model"], where, &tables));

    t.id_limit_ = t.model_->id_limit();
    auto at = j.find("added_tokens");
    if (at != j.end() && !at->is_null()) {
      if (!at->is_array()) DSVL2_FAIL("%s: 'added_tokens' must be an array", w);
      for (const auto& o : *at) {
        if (!o.is_object()) DSVL2_FAIL("%s: added token is not an object", w);
        auto id = o.find("id");
        auto content = o.find("content");
        if (id == o.end() || !id->is_number_integer() || content == o.end() || !content->is_string())
          DSVL2_FAIL("%s: added token needs an integer 'id' and a string 'content'", w);
        const int64_t v = id->get<int64_t>();
        if (v < 0 || v >= int64_t(t.id_limit_) + (1 << 16))
          DSVL2_FAIL("%s: added token id %lld out of range", w, (long long)v);
        AddedToken a;
        a.id = int32_t(v);
        a.content = content->get<std::string>();
        if (a.content.empty() || !utf8::is_valid(a.content))
          DSVL2_FAIL("%s: added token %lld has empty or invalid UTF-8 content", w, (long long)v);
        a.special = flag(o, "special", false, where);
        a.single_word = flag(o, "single_word", false, where);
        a.lstrip = flag(o, "lstrip", false, where);
        a.rstrip = flag(o, "rstrip", false, where);
        a.normalized = flag(o, "normalized", !a.special, where);
        if (t.added_.find(a.content)) continue;
        t.id_limit_ = std::max(t.id_limit_, a.id + 1);
        t.added_.add(std::move(a));
      }
    }
  } catch (const json::exception& e) {
    DSVL2_FAIL("%s: malformed tokenizer.json: %s", w, e.what());
  }
  // Decoder bytes per id: the added token's content first, else the vocab
  // string (TokenizerImpl::decode asks the added vocabulary first).
  t.decoded_.assign(size_t(t.id_limit_), std::string());
  for (int32_t id = 0; id < t.model_->id_limit(); id++)
    if (const std::string& tok = t.model_->token(id); !tok.empty()) t.decoded_[size_t(id)] = decoder_bytes(tok);
  for (const AddedToken& a : t.added_.tokens()) t.decoded_[size_t(a.id)] = decoder_bytes(a.content);

  if (opt.vl2_tokens)
    for (const auto& s : vl2_special_tokens()) t.add_special_token(s);

  if (auto b = t.token_to_id(kDefaultBos)) t.bos_id_ = *b;
  if (auto e = t.token_to_id(kDefaultEos)) t.eos_id_ = *e;
  return t;
}

int32_t Tokenizer::add_special_token(const std::string& content) {
  DSVL2_REQUIRE(!content.empty() && utf8::is_valid(content), "special token must be non-empty UTF-8");
  if (const AddedToken* a = added_.find(content)) return a->id;
  AddedToken a;
  a.content = content;
  a.special = true;
  a.normalized = false;
  if (auto id = model_->token_to_id(content)) {
    a.id = *id;
  } else {
    a.id = id_limit_;
  }
  id_limit_ = std::max(id_limit_, a.id + 1);
  const int32_t id = a.id;
  added_.add(std::move(a));
  decoded_.resize(size_t(id_limit_));
  decoded_[size_t(id)] = decoder_bytes(content);
  return id;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  encode(text, ids);
  return ids;
}

void Tokenizer::encode(std::string_view text, std::vector<int32_t>& out) const {
  if (size_t bad = utf8::find_invalid(text); bad != std::string_view::npos)
    DSVL2_FAIL("text to tokenize is not valid UTF-8 (byte offset %zu)", bad);
  std::vector<AddedVocabulary::Segment> segs;
  added_.split(text, segs);
  for (const auto& s : segs) {
    if (s.id >= 0) {
      out.push_back(s.id);
    } else {
      encode_text(text.substr(s.begin, s.end - s.begin), out);
    }
  }
}

void Tokenizer::encode_text(std::string_view text, std::vector<int32_t>& out) const {
  thread_local std::vector<std::string_view> pieces;
  std::deque<std::string> arena;
  pre_->split(text, pieces, arena);
  for (std::string_view p : pieces) model_->encode_word(p, out);
}

std::string_view Tokenizer::id_bytes(int32_t id) const {
  if (id < 0 || id >= int32_t(decoded_.size())) return {};
  return decoded_[size_t(id)];
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const AddedToken* a = added_.find(token)) return a->id;
  return model_->token_to_id(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  if (const AddedToken* a = added_.by_id(id)) return a->content;
  return model_->token(id);
}

bool Tokenizer::is_special(int32_t id) const {
  const AddedToken* a = added_.by_id(id);
  return a && a->special;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (skip_special && is_special(id)) continue;
    bytes += id_bytes(id);
  }
  return utf8::lossy(bytes);
}

std::string StreamDecoder::push(int32_t id) {
  if (skip_special_ && tok_.is_special(id)) return {};
  pending_ += tok_.id_bytes(id);
  std::string out;
  size_t used = utf8::lossy_append(pending_, out, /*final=*/false);
  pending_.erase(0, used);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  utf8::lossy_append(pending_, out, /*final=*/true);
  pending_.clear();
  return out;
}

}  // namespace dsvl2
