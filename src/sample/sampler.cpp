#include "sample/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace dsvl2 {

void validate_sampling(const SamplingParams& p) {
  if (!(p.temperature >= 0.f) || !std::isfinite(p.temperature)) DSVL2_FAIL("temperature must be >= 0, got %g", p.temperature);
  if (p.top_k < 0) DSVL2_FAIL("top_k must be >= 0, got %d", p.top_k);
  if (!(p.top_p > 0.f && p.top_p <= 1.f)) DSVL2_FAIL("top_p must be in (0, 1], got %g", p.top_p);
  if (!(p.repetition_penalty > 0.f) || !std::isfinite(p.repetition_penalty))
    DSVL2_FAIL("repetition_penalty must be > 0, got %g", p.repetition_penalty);
}

Sampler::Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) { validate_sampling(p); }

void Sampler::accept_prompt(const std::vector<int>& ids) {
  for (int t : ids) seen_.insert(t);
}

void Sampler::accept(int token) { seen_.insert(token); }

void Sampler::reset() {
  seen_.clear();
  rng_ = Rng(p_.seed);
}

int Sampler::sample(const float* logits, int vocab) {
  DSVL2_CHECK(vocab > 0, "empty vocabulary");
  work_.assign(logits, logits + vocab);
  if (p_.repetition_penalty != 1.f) {
    for (int t : seen_) {
      if (t < 0 || t >= vocab) continue;
      float& l = work_[size_t(t)];
      l = l < 0 ? l * p_.repetition_penalty : l / p_.repetition_penalty;
    }
  }
  if (p_.temperature == 0.f) return argmax(work_.data(), vocab);

  for (float& l : work_) l /= p_.temperature;
  // Candidates sorted by logit, descending; top-k trims the list.
  idx_.resize(size_t(vocab));
  std::iota(idx_.begin(), idx_.end(), 0);
  size_t keep = size_t(vocab);
  auto by_logit = [&](int a, int b) { return work_[size_t(a)] > work_[size_t(b)] || (work_[size_t(a)] == work_[size_t(b)] && a < b); };
  if (p_.top_k > 0 && size_t(p_.top_k) < keep) {
    keep = size_t(p_.top_k);
    std::partial_sort(idx_.begin(), idx_.begin() + keep, idx_.end(), by_logit);
  } else {
    std::sort(idx_.begin(), idx_.end(), by_logit);
  }
  idx_.resize(keep);
  // Softmax over the survivors.
  float mx = work_[size_t(idx_[0])];
  std::vector<double> probs(keep);
  double sum = 0;
  for (size_t i = 0; i < keep; i++) sum += probs[i] = std::exp(double(work_[size_t(idx_[i])] - mx));
  for (double& q : probs) q /= sum;
  // Top-p: the smallest prefix whose mass reaches top_p (always at least one token).
  if (p_.top_p < 1.f) {
    double cum = 0;
    size_t n = 0;
    while (n < keep) {
      cum += probs[n++];
      if (cum >= p_.top_p) break;
    }
    keep = n;
    probs.resize(keep);
    double s = std::accumulate(probs.begin(), probs.end(), 0.0);
    for (double& q : probs) q /= s;
  }
  double r = rng_.uniform01(), cum = 0;
  for (size_t i = 0; i < keep; i++) {
    cum += probs[i];
    if (r < cum) return idx_[i];
  }
  return idx_[keep - 1];
}

std::string StopStrings::feed(const std::string& text, bool* stopped) {
  *stopped = false;
  pending_ += text;
  // A completed stop string: emit what precedes the earliest one.
  size_t best = std::string::npos;
  for (const auto& s : stops_) {
    if (s.empty()) continue;
    size_t at = pending_.find(s);
    if (at < best) best = at;
  }
  if (best != std::string::npos) {
    *stopped = true;
    std::string out = pending_.substr(0, best);
    pending_.clear();
    return out;
  }
  // Hold back the longest suffix that is a prefix of some stop string.
  size_t hold = 0;
  for (const auto& s : stops_)
    for (size_t k = std::min(s.size() - (s.empty() ? 0 : 1), pending_.size()); k > hold; k--)
      if (pending_.compare(pending_.size() - k, k, s, 0, k) == 0) {
        hold = k;
        break;
      }
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StopStrings::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace dsvl2
