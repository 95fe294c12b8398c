// The serving engine: one model, N slots, one engine thread that runs every
// request's prompt, image encoding and decode steps as shared batched
// forwards (continuous batching, the shape of llama.cpp's update_slots():
// first the sampled tokens of running slots, then prompt chunks up to a row
// budget, so a long image prompt does not stall running streams).
//
// Each slot owns a KV cache of `context` positions, reserved up front, and
// remembers the keys (model/prefix_keys.h) of what it holds: a request whose
// prefix (system prompt, image, earlier turns) a free slot already holds
// prefills only the rest. Image embeddings are cached by image content.
//
//   Engine engine(model, ops, {.parallel = 4, .context = 4096}, &metrics);
//   std::shared_ptr<RequestStream> s = engine.submit(parse_chat_request(body, limits));
//   std::string text;
//   while (!s->wait(text, 100ms)) { send(text); text.clear(); }
#pragma once
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "model/vl_model.h"
#include "vision/siglip.h"
#include "serve/chat_request.h"
#include "serve/image_cache.h"
#include "serve/metrics.h"
#include "serve/request_stream.h"

namespace dsvl2::serve {

struct EngineOptions {
  int parallel = 4;         // slots: requests running at once
  int context = 4096;       // positions per slot
  size_t image_cache_bytes = 256u << 20;
  int queue_limit = 16;     // requests waiting for a slot; more get 503
  int prefill_chunk = 512;  // prompt rows per step when nothing decodes
  // While some sequence decodes, each step adds at most this many prompt rows
  // and one vision block, so decode latency stays within a small factor.
  int prefill_chunk_decoding = 8;
  double timeout_s = 600;   // wall time per request
  // Sees every logits row a request's token is sampled from (tests compare
  // batched and lone runs); called on the engine thread.
  std::function<void(uint64_t request, const float* logits, int vocab)> on_logits;
};

class Engine {
 public:
  Engine(const VisionLanguageModel& model, const Ops& ops, const EngineOptions& options, Metrics* metrics);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Tokenizes, checks the prompt against the context and queues the request.
  // Throws ApiError: 400 when the prompt does not fit, 503 when the queue is
  // full. `id` (optional) receives the request's id for on_logits.
  std::shared_ptr<RequestStream> submit(ChatRequest req, uint64_t* id = nullptr);
  EngineGauges gauges() const;
  // Bytes reserved for the slots' KV caches (at most parallel x context).
  size_t kv_bytes() const { return kv_bytes_; }
  // Bytes of the vision activations kept for encoding.
  size_t vision_bytes() const;
  const EngineOptions& options() const { return opt_; }

 private:
  struct Job;
  struct Slot;
  void loop();
  void admit(Job& job, Slot& slot);
  void start_sequence(Slot& slot);
  void advance_vision(Slot& slot, bool others_decoding);
  void end_job(Slot& slot, Completion c);
  void check_deadlines();
  void step();
  void fail_running(const std::exception_ptr& e);
  bool queue_full() const;  // with mu_ held

  const VisionLanguageModel& model_;
  Ops ops_;
  EngineOptions opt_;
  Metrics* metrics_;
  size_t kv_bytes_ = 0;
  ImageCache image_cache_;
  // One image is encoded at a time, in these activations, reserved and
  // touched at start-up for the largest tiling the processor allows.
  VisionScratch vision_scratch_;
  std::vector<std::unique_ptr<Slot>> slots_;
  uint64_t clock_ = 0;  // orders slot use for LRU choice
  uint64_t hash_key_ = 0;  // secret mixed into image hashes (even: the crop flag is bit 0)

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Job>> queue_;
  uint64_t next_id_ = 1;
  int active_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace dsvl2::serve
