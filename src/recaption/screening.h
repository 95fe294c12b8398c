// Zero-shot screening with the loaded model, in place of PixelProse's
// classifiers (no weights for them can be had): the image and a yes/no
// question, and the score is P(yes) / (P(yes) + P(no)) from the first answer
// token's distribution. It shares the caption prompt's image prefix in the
// slot's KV cache, so a question costs only its own tokens.
//
//   YesNoTokens yn(tok);
//   double p = yn.score(logits, vocab);   // in [0, 1]
#pragma once
#include <cstdint>
#include <vector>

#include "text/tokenizer.h"

namespace dsvl2::recaption {

class YesNoTokens {
 public:
  // The first token of each spelling the answer may start with ("Yes", " yes",
  // "YES", ...). Throws Error when the tokenizer has neither answer.
  explicit YesNoTokens(const Tokenizer& tok);
  // P(yes) / (P(yes) + P(no)) under softmax(logits); 0.5 when both vanish.
  double score(const float* logits, int vocab) const;
  const std::vector<int32_t>& yes() const { return yes_; }
  const std::vector<int32_t>& no() const { return no_; }

 private:
  std::vector<int32_t> yes_, no_;
};

}  // namespace dsvl2::recaption
