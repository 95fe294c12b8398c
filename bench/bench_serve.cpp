// The serving engine under the three loads the server is judged by, in one
// run, in process (no HTTP: the figures are the scheduler's and the model's):
//   1. aggregate decode tok/s with 1, 4 and 8 concurrent streams;
//   2. time to first token of a second question about an already-seen image,
//      against the first question's;
//   3. inter-token latency of 4 running streams while a fifth request encodes
//      and prefills a 640x480 image prompt (about 1,000 positions).
// Token times come from the engine thread (the logits of every step).
//
//   bench_serve MODEL_DIR [threads] [bf16|f32] [rows] [decode|agree|ttft|itl]   (tokenizer.json in MODEL_DIR)
// rows: prompt rows per step while others decode (EngineOptions).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

#include "core/base64.h"
#include "core/file.h"
#include "core/heap.h"
#include "model/cost.h"
#include "serve/engine.h"

namespace dsvl2::serve {
namespace {

using Clock = std::chrono::steady_clock;
double now() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

struct TokenTimes {
  std::mutex mu;
  std::map<uint64_t, std::vector<double>> t;
  void operator()(uint64_t id, const float*, int) {
    std::lock_guard<std::mutex> lock(mu);
    t[id].push_back(now());
  }
  std::vector<double> of(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu);
    return t[id];
  }
  void clear() {  // request ids start again at 1 in every engine
    std::lock_guard<std::mutex> lock(mu);
    t.clear();
  }
};

std::string image_url() {
  const std::string b = read_file(DSVL2_DEMO_IMAGE);
  return "data:image/png;base64," + base64_encode(reinterpret_cast<const uint8_t*>(b.data()), b.size());
}

ChatRequest make(const std::string& text, const std::string& image, int max_tokens) {
  std::string content = "\"" + text + "\"";
  if (!image.empty())
    content = R"([{"type":"image_url","image_url":{"url":")" + image + R"("}},{"type":"text","text":")" + text + "\"}]";
  RequestLimits lim;
  lim.max_tokens = 1 << 16;
  ChatRequest r = parse_chat_request(R"({"messages":[{"role":"user","content":)" + content +
                                         R"(}],"temperature":0,"max_tokens":)" + std::to_string(max_tokens) + "}",
                                     lim);
  r.gen.stop_strings.clear();  // random weights: run to max_tokens
  return r;
}

void wait_all(std::vector<std::shared_ptr<RequestStream>>& outs) {
  for (auto& o : outs) {
    std::string text;
    while (!o->wait(text, std::chrono::milliseconds(20))) text.clear();
    if (o->result().error) std::fprintf(stderr, "request failed: %s\n", o->result().error->what());
  }
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p * double(v.size() - 1) + 0.5))];
}

int run(const std::string& dir, int threads, Compute compute, int chunk_decoding, const std::string& only) {
  VisionLanguageModel model(dir);
  ThreadPool pool(threads);
  Ops ops{&kernels_best(), &pool, compute};
  model.make_ready(ops);
  const char* prompts[] = {"Write a story about a ship.", "List the planets.",       "Explain photosynthesis.",
                           "Describe a city at night.",   "What is a prime number?", "Tell me about rivers.",
                           "Compose a short poem.",       "How do bridges stand?"};
  TokenTimes times;
  EngineOptions o;
  o.parallel = 8;
  o.context = 2048;
  o.on_logits = [&](uint64_t id, const float* l, int v) { times(id, l, v); };
  o.prefill_chunk_decoding = chunk_decoding;
  std::printf("model %s | %s | %d threads | prompt rows per step while decoding %d\n", dir.c_str(),
              compute_name(compute), pool.size(), chunk_decoding);

  // 1. Aggregate decode throughput: tokens stamped while every stream was
  // past its prompt and none had finished, over that window.
  const int kTokens = 64;
  double one = 0;
  for (int n : {1, 4, 8}) {
    if (!only.empty() && only != "decode") break;
    times.clear();
    Engine engine(model, ops, o, nullptr);
    std::vector<std::shared_ptr<RequestStream>> outs;
    std::vector<uint64_t> ids(static_cast<size_t>(n));
    for (int i = 0; i < n; i++) outs.push_back(engine.submit(make(prompts[i], "", kTokens), &ids[size_t(i)]));
    wait_all(outs);
    double begin = 0, end = 1e300;
    for (uint64_t id : ids) {
      auto t = times.of(id);
      begin = std::max(begin, t.front());
      end = std::min(end, t.back());
    }
    size_t tokens = 0;
    for (uint64_t id : ids)
      for (double t : times.of(id)) tokens += t > begin && t <= end;
    const double tok_s = double(tokens) / (end - begin);
    if (n == 1) one = tok_s;
    // What the weights allow: a step of n rows reads every expert any of
    // them routes to (uniform random routing with random weights).
    const LanguageConfig& L = model.config().language;
    const double bound = n * linear_params_per_step(L, 1) / linear_params_per_step(L, n);
    std::printf("decode, %d stream(s): %.1f tok/s aggregate (%.2fx one stream; weight bytes per token allow %.2fx)\n", n,
                tok_s, tok_s / one, bound);
  }

  // Agreement of batched and lone runs: 4 requests stepped together, then
  // each alone in a fresh engine; every step's logits compared.
  if (only.empty() || only == "agree") {
    times.clear();
    std::map<uint64_t, std::vector<std::vector<float>>> rows;
    std::mutex mu;
    EngineOptions oa = o;
    oa.on_logits = [&](uint64_t id, const float* l, int v) {
      std::lock_guard<std::mutex> lock(mu);
      rows[id].emplace_back(l, l + v);
    };
    std::vector<std::vector<std::vector<float>>> batched(4), lone(4);
    {
      Engine engine(model, ops, oa, nullptr);
      std::vector<std::shared_ptr<RequestStream>> outs;
      std::vector<uint64_t> ids(4);
      for (int i = 0; i < 4; i++) outs.push_back(engine.submit(make(prompts[i], "", 16), &ids[size_t(i)]));
      wait_all(outs);
      for (int i = 0; i < 4; i++) batched[size_t(i)] = rows[ids[size_t(i)]];
    }
    for (int i = 0; i < 4; i++) {
      rows.clear();
      Engine engine(model, ops, oa, nullptr);
      uint64_t id = 0;
      std::vector<std::shared_ptr<RequestStream>> outs = {engine.submit(make(prompts[i], "", 16), &id)};
      wait_all(outs);
      lone[size_t(i)] = rows[id];
    }
    double worst = 0, scale = 0;
    int steps = 0, same = 0;
    for (size_t i = 0; i < 4; i++) {
      bool diverged = false;
      for (size_t s = 0; s < std::min(batched[i].size(), lone[i].size()) && !diverged; s++) {
        const auto& a = batched[i][s];
        const auto& b = lone[i][s];
        for (size_t k = 0; k < a.size(); k++) {
          worst = std::max(worst, double(std::abs(a[k] - b[k])));
          scale = std::max(scale, double(std::abs(b[k])));
        }
        const bool agree = std::max_element(a.begin(), a.end()) - a.begin() == std::max_element(b.begin(), b.end()) - b.begin();
        same += agree;
        steps++;
        diverged = !agree;  // later steps see different tokens
      }
    }
    std::printf("batched vs lone (4 requests x 16 steps): max |logit diff| %.3g (largest |logit| %.3g), "
                "greedy token agreement %d/%d steps\n", worst, scale, same, steps);
  }

  // 2. Time to first token, first and second question about one image.
  const std::string img = image_url();
  if (only.empty() || only == "ttft") {
    times.clear();
    Engine engine(model, ops, o, nullptr);
    double ttft[2];
    const char* q[] = {"Describe this image.", "What colour is the largest object?"};
    for (int k = 0; k < 2; k++) {
      uint64_t id = 0;
      const double t0 = now();
      std::vector<std::shared_ptr<RequestStream>> outs = {engine.submit(make(q[k], img, 1), &id)};
      wait_all(outs);
      ttft[k] = times.of(id).front() - t0;
      std::printf("ttft, %s question about the image: %.3f s (cached positions %d)\n", k ? "second" : "first", ttft[k],
                  outs[0]->result().cached_tokens);
    }
    std::printf("ttft second / first: %.3f\n", ttft[1] / ttft[0]);
  }

  // 3. Inter-token latency of 4 streams while a fifth request encodes and
  // prefills an image prompt.
  if (only.empty() || only == "itl") {
    EngineOptions o5 = o;
    o5.parallel = 5;
    o5.image_cache_bytes = 0;  // the fifth image must be encoded
    times.clear();
    Engine engine(model, ops, o5, nullptr);
    std::vector<std::shared_ptr<RequestStream>> outs;
    std::vector<uint64_t> ids(4);
    for (int i = 0; i < 4; i++) outs.push_back(engine.submit(make(prompts[i], "", 400), &ids[size_t(i)]));
    while (times.of(ids[3]).size() < 20) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    uint64_t fifth = 0;
    const double t5 = now();
    std::vector<std::shared_ptr<RequestStream>> big = {engine.submit(make("Describe this image.", img, 1), &fifth)};
    wait_all(big);
    const double t5_first = times.of(fifth).front();
    for (auto& s : outs) s->cancel();
    wait_all(outs);
    std::vector<double> before, during;
    for (uint64_t id : ids) {
      auto t = times.of(id);
      for (size_t k = 1; k < t.size(); k++) {
        if (t[k] <= t5) before.push_back(t[k] - t[k - 1]);
        else if (t[k - 1] >= t5 && t[k] <= t5_first) during.push_back(t[k] - t[k - 1]);
      }
    }
    const double p50 = percentile(before, 0.5);
    std::printf("itl of 4 streams before the image request: p50 %.1f ms (%zu gaps)\n", p50 * 1e3, before.size());
    std::printf("itl while a %d-position image prompt encodes and prefills (%.2f s): p50 %.1f ms, p99 %.1f ms, max %.1f ms "
                "(%zu gaps); p99 / p50 before = %.2f\n",
                big[0]->result().prompt_tokens, t5_first - t5, percentile(during, 0.5) * 1e3,
                percentile(during, 0.99) * 1e3, percentile(during, 1.0) * 1e3, during.size(),
                percentile(during, 0.99) / p50);
  }
  return 0;
}

}  // namespace
}  // namespace dsvl2::serve

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_serve MODEL_DIR [threads] [bf16|f32] [prompt rows per step while decoding] [decode|agree|ttft|itl]\n");
    return 2;
  }
  dsvl2::keep_freed_activations();  // as the dsvl2 command
  dsvl2::Compute c = dsvl2::Compute::kBF16;
  if (argc > 3 && !dsvl2::parse_compute(argv[3], &c)) return 2;
  try {
    return dsvl2::serve::run(argv[1], argc > 2 ? std::atoi(argv[2]) : 2, c,
                             argc > 4 ? std::atoi(argv[4]) : dsvl2::serve::EngineOptions{}.prefill_chunk_decoding,
                             argc > 5 ? argv[5] : "");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_serve: %s\n", e.what());
    return 1;
  }
}
