#include "serve/metrics.h"

#include <cstdio>

namespace dsvl2::serve {
namespace {
std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}
void line(std::string& out, const std::string& name, const std::string& help, const char* type, double v) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " + num(v) + "\n";
}
}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  size_t b = 0;
  while (b < bounds_.size() && v > bounds_[b]) b++;
  std::lock_guard<std::mutex> lock(mu_);
  counts_[b]++;
  sum_ += v;
  count_++;
}

uint64_t Histogram::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  std::lock_guard<std::mutex> lock(mu_);
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  uint64_t cum = 0;
  for (size_t b = 0; b < bounds_.size(); b++) {
    cum += counts_[b];
    out += name + "_bucket{le=\"" + num(bounds_[b]) + "\"} " + std::to_string(cum) + "\n";
  }
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  out += name + "_sum " + num(sum_) + "\n" + name + "_count " + std::to_string(count_) + "\n";
}

Metrics::Metrics()
    : time_to_first_token({0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60}),
      inter_token_latency({0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2}),
      queue_wait({0.01, 0.1, 0.5, 1, 5, 10, 30, 60}),
      step_seconds({0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2}) {}

void Metrics::count_response(int status) {
  std::lock_guard<std::mutex> lock(mu_);
  responses_[status]++;
}

std::string Metrics::render(const EngineGauges& g) const {
  std::string out;
  out += "# HELP dsvl2_requests_total HTTP responses by status code.\n# TYPE dsvl2_requests_total counter\n";
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [status, n] : responses_)
      out += "dsvl2_requests_total{status=\"" + std::to_string(status) + "\"} " + std::to_string(n) + "\n";
  }
  line(out, "dsvl2_prompt_tokens_total", "Prompt tokens of finished requests (cached ones included).", "counter", double(prompt_tokens));
  line(out, "dsvl2_generated_tokens_total", "Tokens generated.", "counter", double(generated_tokens));
  line(out, "dsvl2_prefix_cache_tokens_total", "Prompt tokens reused from a slot's KV cache.", "counter", double(cached_tokens));
  line(out, "dsvl2_prefix_cache_hits_total", "Requests that reused a cached prefix.", "counter", double(prefix_cache_hits));
  line(out, "dsvl2_image_cache_hits_total", "Images whose embeddings came from the image cache.", "counter", double(image_cache_hits));
  line(out, "dsvl2_image_cache_misses_total", "Images encoded by the vision tower.", "counter", double(image_cache_misses));
  line(out, "dsvl2_request_timeouts_total", "Requests ended by the wall-time limit.", "counter", double(timeouts));
  line(out, "dsvl2_request_cancellations_total", "Requests whose client went away.", "counter", double(cancellations));
  line(out, "dsvl2_engine_errors_total", "Requests ended by an engine error.", "counter", double(engine_errors));
  line(out, "dsvl2_queue_length", "Requests waiting for a slot.", "gauge", g.queued);
  line(out, "dsvl2_active_slots", "Slots running a request.", "gauge", g.active);
  line(out, "dsvl2_slots", "Slots (--parallel).", "gauge", g.slots);
  line(out, "dsvl2_image_cache_bytes", "Bytes held by the image-embedding cache.", "gauge", double(g.image_cache_bytes));
  line(out, "dsvl2_image_cache_entries", "Images in the image-embedding cache.", "gauge", double(g.image_cache_entries));
  time_to_first_token.render(out, "dsvl2_time_to_first_token_seconds", "From arrival to the first generated token.");
  inter_token_latency.render(out, "dsvl2_inter_token_latency_seconds", "Between consecutive tokens of one request.");
  queue_wait.render(out, "dsvl2_queue_wait_seconds", "From arrival to taking a slot.");
  step_seconds.render(out, "dsvl2_step_seconds", "One batched forward of the running requests.");
  return out;
}

}  // namespace dsvl2::serve
