// `dsvl2 tokenize`: encode text (or --decode ids) with a tokenizer.json, as
// tokenizer.encode(text, add_special_tokens=False) with the DeepSeek-VL2
// tokens added (--raw: without them).
#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "command.h"
#include "core/error.h"
#include "text/tokenizer.h"

namespace dsvl2::cli {
namespace {

struct TokenizeOpts {
  std::string tokenizer;
  std::string text;
  bool has_text = false, raw = false, decode = false;
};

std::string read_stdin() {
  std::string s;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), stdin)) > 0) s.append(buf, n);
  if (std::ferror(stdin)) DSVL2_FAIL("cannot read standard input");
  return s;
}

std::vector<int32_t> parse_ids(const std::string& s) {
  auto j = nlohmann::json::parse(s, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) DSVL2_FAIL("--decode expects a JSON array of token ids");
  std::vector<int32_t> ids;
  for (const auto& v : j) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
      DSVL2_FAIL("--decode: %s is not a token id", v.dump().c_str());
    ids.push_back(int32_t(v.get<int64_t>()));
  }
  return ids;
}

Command reg("tokenize", "Encode text to token ids (JSON array), or --decode ids to text", [](CLI::App& app) {
  auto o = std::make_shared<TokenizeOpts>();
  app.add_option("--tokenizer", o->tokenizer, "tokenizer.json, or a folder holding it")->required();
  app.add_flag("--raw", o->raw, "Without the DeepSeek-VL2 special tokens (<image>, <|ref|>, ...)");
  app.add_option("--text", o->text, "Text to encode (default: all of standard input)")->each([o](const std::string&) {
    o->has_text = true;
  });
  app.add_flag("--decode", o->decode, "Input is a JSON array of ids; print the decoded text");
  return std::function<int()>([o] {
    TokenizerOptions opt;
    opt.vl2_tokens = !o->raw;
    Tokenizer tok = Tokenizer::load(o->tokenizer, opt);
    std::string input = o->has_text ? o->text : read_stdin();
    if (o->decode) {
      std::string text = tok.decode(parse_ids(input));
      std::fwrite(text.data(), 1, text.size(), stdout);
      return 0;
    }
    std::vector<int32_t> ids = tok.encode(input);
    std::string out = "[";
    for (size_t i = 0; i < ids.size(); i++) {
      if (i) out += ", ";
      out += std::to_string(ids[i]);
    }
    out += "]\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  });
});

}  // namespace
}  // namespace dsvl2::cli
