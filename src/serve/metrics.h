// Server counters and latency histograms in Prometheus' text format
// (GET /metrics). Thread-safe: HTTP threads count responses, the engine
// thread counts tokens, cache hits and latencies.
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace dsvl2::serve {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v);
  // Appends the _bucket, _sum and _count lines of metric `name`.
  void render(std::string& out, const std::string& name, const std::string& help) const;
  uint64_t count() const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative
  double sum_ = 0;
  uint64_t count_ = 0;
};

struct EngineGauges {
  int queued = 0, active = 0, slots = 0;
  size_t image_cache_bytes = 0, image_cache_entries = 0;
};

class Metrics {
 public:
  Metrics();
  void count_response(int status);
  std::atomic<uint64_t> prompt_tokens{0}, generated_tokens{0}, cached_tokens{0};
  std::atomic<uint64_t> image_cache_hits{0}, image_cache_misses{0}, prefix_cache_hits{0};
  std::atomic<uint64_t> timeouts{0}, cancellations{0}, engine_errors{0};
  Histogram time_to_first_token, inter_token_latency, queue_wait, step_seconds;

  std::string render(const EngineGauges& g) const;

 private:
  mutable std::mutex mu_;
  std::map<int, uint64_t> responses_;  // by HTTP status
};

}  // namespace dsvl2::serve
