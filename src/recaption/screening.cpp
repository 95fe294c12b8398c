#include "recaption/screening.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace dsvl2::recaption {
namespace {

std::vector<int32_t> first_tokens(const Tokenizer& tok, std::initializer_list<const char*> spellings) {
  std::vector<int32_t> out;
  for (const char* s : spellings) {
    std::vector<int32_t> ids = tok.encode(s);
    if (!ids.empty() && std::find(out.begin(), out.end(), ids[0]) == out.end()) out.push_back(ids[0]);
  }
  return out;
}

}  // namespace

YesNoTokens::YesNoTokens(const Tokenizer& tok)
    : yes_(first_tokens(tok, {"Yes", " Yes", "yes", " yes", "YES", " YES"})),
      no_(first_tokens(tok, {"No", " No", "no", " no", "NO", " NO"})) {
  // A spelling whose first token is shared ("N" of "No" and "Not") would blur
  // the score: a token in both lists counts for neither.
  std::vector<int32_t> both;
  for (int32_t t : yes_)
    if (std::find(no_.begin(), no_.end(), t) != no_.end()) both.push_back(t);
  auto drop = [&](std::vector<int32_t>& v) {
    v.erase(std::remove_if(v.begin(), v.end(), [&](int32_t t) { return std::find(both.begin(), both.end(), t) != both.end(); }),
            v.end());
  };
  drop(yes_);
  drop(no_);
  DSVL2_REQUIRE(!yes_.empty() && !no_.empty(), "the tokenizer has no token for the answers Yes and No");
}

double YesNoTokens::score(const float* logits, int vocab) const {
  // Softmax over the whole vocabulary, in log space for stability; only the
  // ratio of the two masses matters, so the normaliser cancels.
  float mx = -INFINITY;
  for (int32_t t : yes_) mx = std::max(mx, t < vocab ? logits[t] : -INFINITY);
  for (int32_t t : no_) mx = std::max(mx, t < vocab ? logits[t] : -INFINITY);
  if (!std::isfinite(mx)) return 0.5;
  double py = 0, pn = 0;
  for (int32_t t : yes_)
    if (t < vocab) py += std::exp(double(logits[t]) - mx);
  for (int32_t t : no_)
    if (t < vocab) pn += std::exp(double(logits[t]) - mx);
  return py + pn > 0 ? py / (py + pn) : 0.5;
}

}  // namespace dsvl2::recaption
