#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/regex.h"

#include <pcre2.h>

#include "core/error.h"

namespace dsvl2 {
namespace {

// Oniguruma Unicode \s: White_Space = \t..\r, U+0085 and the Z categories.
constexpr std::string_view kSpaceItems = "\\t-\\r\\x{85}\\p{Z}";

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

// Per-thread match scratch: match data and a JIT stack large enough for long
// whitespace runs.
struct Scratch {
  pcre2_match_data* md = nullptr;
  pcre2_match_context* mc = nullptr;
  pcre2_jit_stack* js = nullptr;
  Scratch() {
    md = pcre2_match_data_create(1, nullptr);
    mc = pcre2_match_context_create(nullptr);
    js = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    if (mc && js) pcre2_jit_stack_assign(mc, nullptr, js);
  }
  ~Scratch() {
    pcre2_match_data_free(md);
    pcre2_match_context_free(mc);
    pcre2_jit_stack_free(js);
  }
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

}  // namespace

std::string Regex::onig_to_pcre2(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 16);
  int class_depth = 0;
  for (size_t i = 0; i < p.size(); i++) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char n = p[i + 1];
      i++;
      if (n == 's') {
        if (class_depth) {
          out += kSpaceItems;
        } else {
          out += '[';
          out += kSpaceItems;
          out += ']';
        }
      } else if (n == 'S' && !class_depth) {
        out += "[^";
        out += kSpaceItems;
        out += ']';
      } else {
        out += c;
        out += n;  // other escapes (and \S inside a class) keep PCRE2's meaning
      }
      continue;
    }
    if (c == '[') {
      if (class_depth && i + 1 < p.size() && p[i + 1] == ':') {  // POSIX [:name:]
        size_t e = p.find(":]", i + 2);
        if (e != std::string_view::npos) {
          out.append(p.substr(i, e + 2 - i));
          i = e + 1;
          continue;
        }
      }
      out += c;
      if (!class_depth) {
        class_depth = 1;
        // A ']' (or '^]') right after the opening bracket is a literal.
        if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
        if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      } else {
        class_depth++;  // Oniguruma nested class
      }
      continue;
    }
    if (c == ']' && class_depth) class_depth--;
    out += c;
  }
  return out;
}

Regex::Regex(const std::string& pattern, bool literal) : pattern_(pattern) {
  std::string pat = literal ? pattern : onig_to_pcre2(pattern);
  uint32_t opts = PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE;
  if (literal) opts = PCRE2_UTF | PCRE2_LITERAL;
  pcre2_compile_context* cc = pcre2_compile_context_create(nullptr);
  if (cc) pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
  int err = 0;
  PCRE2_SIZE off = 0;
  auto* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pat.data()), pat.size(), opts, &err, &off, cc);
  pcre2_compile_context_free(cc);
  if (!code)
    DSVL2_FAIL("bad regex /%s/ at offset %zu: %s", pattern.c_str(), size_t(off), pcre2_message(err).c_str());
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is unavailable
  code_ = code;
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

void Regex::find_all(std::string_view subject, std::vector<std::pair<size_t, size_t>>& out) const {
  auto* code = static_cast<pcre2_code*>(code_);
  Scratch& s = scratch();
  DSVL2_REQUIRE(s.md && s.mc, "out of memory for regex matching");
  auto* subj = reinterpret_cast<PCRE2_SPTR>(subject.data());
  const size_t n = subject.size();
  size_t pos = 0;
  while (pos <= n) {
    int rc = pcre2_match(code, subj, n, pos, PCRE2_NO_UTF_CHECK, s.md, s.mc);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) DSVL2_FAIL("regex /%s/ failed on input: %s", pattern_.c_str(), pcre2_message(rc).c_str());
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(s.md);
    size_t b = ov[0], e = ov[1];
    if (e < b) e = b;  // \K tricks; not used by tokenizer patterns
    out.emplace_back(b, e);
    if (e > b) {
      pos = e;
    } else {  // empty match: step over one code point
      if (e >= n) break;
      pos = e + 1;
      while (pos < n && (uint8_t(subject[pos]) & 0xC0) == 0x80) pos++;
    }
  }
}

}  // namespace dsvl2
