#include "serve/engine.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>

#include "core/error.h"
#include "model/prefix_keys.h"
#include "model/sequence.h"
#include "vision/vision_encoding.h"

namespace dsvl2::serve {
namespace {
double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
}  // namespace

// A request from submit() to its end.
struct Engine::Job {
  uint64_t id = 0;
  ChatRequest req;
  std::shared_ptr<RequestStream> out;
  bool crop = false;
  PromptIds prompt;
  std::vector<uint64_t> hashes, keys;  // per image; per prompt position
  // Tiles of the images the image cache lacked at submit, made on the HTTP
  // thread (the PIL-exact resampling of a large image takes a while).
  std::vector<std::optional<PreprocessResult>> pixels;
  double t_arrival = 0, deadline = 0;
};

struct Engine::Slot {
  enum class State { kFree, kEncoding, kRunning };
  State state = State::kFree;
  std::unique_ptr<KVCache> cache;
  std::vector<uint64_t> keys;  // what the cache holds, one key per position
  uint64_t last_used = 0;
  std::unique_ptr<Job> job;
  size_t cached = 0;  // prompt positions reused from the cache
  std::vector<std::shared_ptr<const Tensor>> tokens;  // per image, when needed
  std::vector<size_t> to_encode;                       // images still to encode
  std::unique_ptr<VisionEncoding> encoding;            // of to_encode.front()
  std::shared_ptr<ground::RunawayGuard> guard;
  std::unique_ptr<Sequence> seq;
  size_t tokens_seen = 0;
  double last_token_t = 0;
};

Engine::Engine(const VisionLanguageModel& model, const Ops& ops, const EngineOptions& options, Metrics* metrics)
    : model_(model), ops_(ops), opt_(options), metrics_(metrics), image_cache_(options.image_cache_bytes) {
  DSVL2_REQUIRE(opt_.parallel >= 1 && opt_.parallel <= 256, "parallel must be 1 to 256, got %d", opt_.parallel);
  DSVL2_REQUIRE(opt_.queue_limit >= 0, "the queue limit must be >= 0");
  DSVL2_REQUIRE(opt_.prefill_chunk >= 1 && opt_.prefill_chunk_decoding >= 1, "prefill chunks must be >= 1");
  DSVL2_REQUIRE(model.has_tokenizer(), "%s: serving needs tokenizer.json beside the model", model.dir().c_str());
  for (int i = 0; i < opt_.parallel; i++) {
    auto s = std::make_unique<Slot>();
    s->cache = std::make_unique<KVCache>(model.config().language, opt_.context, kv_dtype_for(ops.compute));
    kv_bytes_ += s->cache->bytes();
    slots_.push_back(std::move(s));
  }
  opt_.context = slots_[0]->cache->context();
  hash_key_ = (uint64_t(std::random_device{}()) << 32 | std::random_device{}()) & ~uint64_t(1);
  const ProcessorConfig& proc = model.processor();
  int64_t max_tiles = 1;
  for (const auto& [h, w] : proc.candidate_resolutions)
    max_tiles = std::max<int64_t>(max_tiles, int64_t(h / proc.image_size) * (w / proc.image_size));
  const VisionConfig& vc = model.config().vision;
  vision_scratch_.reserve((1 + max_tiles) * vc.grid() * vc.grid(), vc);
  for (Tensor* t : {&vision_scratch_.x, &vision_scratch_.h, &vision_scratch_.qkv, &vision_scratch_.attn,
                    &vision_scratch_.mlp})
    std::memset(t->data(), 0, t->nbytes());  // fault the pages in now, not during a request
  thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  Completion c;
  c.error = ApiError(503, "the server is shutting down");
  for (auto& s : slots_)
    if (s->job) s->job->out->finish(c);
  for (auto& j : queue_) j->out->finish(c);
}

bool Engine::queue_full() const {
  return int(queue_.size()) >= opt_.queue_limit + std::max(0, opt_.parallel - active_);
}

std::shared_ptr<RequestStream> Engine::submit(ChatRequest req, uint64_t* id) {
  auto job = std::make_unique<Job>();
  job->t_arrival = now_s();
  job->deadline = job->t_arrival + opt_.timeout_s;
  const Tokenizer& tok = model_.tokenizer();
  if (!req.images.empty() && model_.image_token_id() < 0)
    throw ApiError(400, "this model's tokenizer has no image token; it cannot take images");
  job->crop = cropping_enabled(CropMode::kAuto, req.images.size());
  std::vector<int64_t> counts;
  for (const auto& img : req.images) {
    counts.push_back(image_token_count(img.image, model_.processor(), job->crop));
    // Keyed by a secret of this process: a client that could choose pixels
    // to collide with another image's hash would get its cached tokens.
    job->hashes.push_back(image_content_hash(img.image, hash_key_ ^ uint64_t(job->crop)));
  }
  try {
    job->prompt = build_prompt_ids(tok, req.messages, counts);
  } catch (const Error& e) {
    throw ApiError(400, e.what(), "messages");
  }
  const size_t n = job->prompt.ids.size();
  if (n + 1 > size_t(opt_.context))
    throw ApiError(400,
                   "the prompt has " + std::to_string(n) + " tokens and the context allows " +
                       std::to_string(opt_.context) + " (including at least one generated token)",
                   "messages", "", "context_length_exceeded");
  job->keys = prefix_keys(job->prompt, job->hashes);
  {
    std::lock_guard<std::mutex> lock(mu_);  // before the image work; checked again when queueing
    if (queue_full()) throw ApiError(503, "the server is busy", "", "", "queue_full");
  }
  job->pixels.resize(req.images.size());
  try {
    for (size_t i = 0; i < req.images.size(); i++)
      if (!image_cache_.contains(job->hashes[i]))
        job->pixels[i] = preprocess_images({req.images[i].image}, model_.processor(),
                                           job->crop ? CropMode::kOn : CropMode::kOff);
  } catch (const Error& e) {
    throw ApiError(400, e.what(), "messages");
  }
  job->req = std::move(req);
  job->out = std::make_shared<RequestStream>();
  std::shared_ptr<RequestStream> out = job->out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_full())
      throw ApiError(503, "the server is busy: " + std::to_string(queue_.size()) + " requests are waiting", "", "",
                     "queue_full");
    job->id = next_id_++;
    if (id) *id = job->id;
    queue_.push_back(std::move(job));
  }
  cv_.notify_all();
  return out;
}

size_t Engine::vision_bytes() const {
  const VisionScratch& v = vision_scratch_;
  return v.x.nbytes() + v.h.nbytes() + v.qkv.nbytes() + v.attn.nbytes() + v.mlp.nbytes();
}

EngineGauges Engine::gauges() const {
  std::lock_guard<std::mutex> lock(mu_);
  EngineGauges g;
  g.queued = int(queue_.size());
  g.active = active_;
  g.slots = int(slots_.size());
  g.image_cache_bytes = image_cache_.bytes();
  g.image_cache_entries = image_cache_.size();
  return g;
}

void Engine::loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty() || active_ > 0; });
      if (stop_) return;
      // Waiting requests whose client left, or whose time ran out, go now:
      // they must not hold queue places nor be run for nobody.
      const double t = now_s();
      for (auto it = queue_.begin(); it != queue_.end();) {
        Job& j = **it;
        if (!j.out->cancelled() && t <= j.deadline) {
          ++it;
          continue;
        }
        Completion c;
        if (!j.out->cancelled()) c.error = ApiError(503, "no slot became free within the request's time limit");
        if (metrics_) (j.out->cancelled() ? metrics_->cancellations : metrics_->timeouts)++;
        j.out->finish(std::move(c));
        it = queue_.erase(it);
      }
      // Admit waiting requests into free slots, oldest first.
      while (!queue_.empty()) {
        Slot* best = nullptr;
        size_t best_common = 0;
        for (auto& s : slots_) {
          if (s->state != Slot::State::kFree) continue;
          const size_t common = common_prefix(s->keys, queue_.front()->keys);
          if (!best || common > best_common || (common == best_common && s->last_used < best->last_used)) {
            best = s.get();
            best_common = common;
          }
        }
        if (!best) break;
        std::unique_ptr<Job> job = std::move(queue_.front());
        queue_.pop_front();
        active_++;
        lock.unlock();
        best->job = std::move(job);
        try {
          admit(*best->job, *best);
        } catch (const std::exception& e) {  // never out of the engine thread
          if (metrics_) metrics_->engine_errors++;
          Completion c;
          c.error = ApiError(500, std::string("the request could not start: ") + e.what());
          end_job(*best, std::move(c));
        }
        lock.lock();
      }
    }
    check_deadlines();
    bool decoding = false;
    for (auto& s : slots_) decoding |= s->state == Slot::State::kRunning;
    // One image pass a step, and one image at a time (they share the
    // activations): the slot whose encoding has begun goes first.
    Slot* encoding = nullptr;
    for (auto& s : slots_)
      if (s->state == Slot::State::kEncoding && (!encoding || s->encoding)) encoding = s.get();
    if (encoding) advance_vision(*encoding, decoding);
    step();
  }
}

void Engine::admit(Job& job, Slot& slot) {
  if (metrics_) metrics_->queue_wait.observe(now_s() - job.t_arrival);
  slot.last_used = ++clock_;
  // Reuse the longest prefix the slot holds; at least one position must be
  // run to get logits.
  size_t common = std::min(common_prefix(slot.keys, job.keys), job.keys.size() - 1);
  slot.cache->truncate(int(common));
  slot.keys.resize(common);
  slot.cached = common;
  slot.tokens.assign(job.req.images.size(), nullptr);
  slot.to_encode.clear();
  slot.tokens_seen = 0;
  for (size_t i = 0; i < job.prompt.images.size(); i++) {
    const ImageSpan& span = job.prompt.images[i];
    if (size_t(span.begin + span.count) <= common) continue;  // all its positions are cached
    slot.tokens[i] = image_cache_.find(job.hashes[i]);
    if (slot.tokens[i]) {
      if (metrics_) metrics_->image_cache_hits++;
    } else {
      slot.to_encode.push_back(i);
    }
  }
  if (metrics_ && common > 0) {
    metrics_->prefix_cache_hits++;
    metrics_->cached_tokens += common;
  }
  if (slot.to_encode.empty()) {
    start_sequence(slot);
  } else {
    slot.state = Slot::State::kEncoding;
  }
}

void Engine::advance_vision(Slot& slot, bool others_decoding) {
  try {
    const size_t i = slot.to_encode.front();
    if (!slot.encoding) {
      std::optional<PreprocessResult>& ready = slot.job->pixels[i];
      PreprocessResult pre = ready ? std::move(*ready)
                                   : preprocess_images({slot.job->req.images[i].image}, model_.processor(),
                                                       slot.job->crop ? CropMode::kOn : CropMode::kOff);
      ready.reset();
      slot.encoding = std::make_unique<VisionEncoding>(model_.vision(), std::move(pre.pixel_values),
                                                       std::move(pre.images_spatial_crop), &vision_scratch_);
    }
    // While others decode, one block on one tile a step (~ one decode step's
    // time at Tiny's size); otherwise the whole tower at once.
    const bool more = others_decoding ? !slot.encoding->advance(ops_, 1, 1)
                                      : !slot.encoding->advance(ops_, slot.encoding->blocks());
    if (more) return;
    auto tokens = std::make_shared<const Tensor>(slot.encoding->take_tokens());
    slot.encoding.reset();
    if (metrics_) metrics_->image_cache_misses++;
    image_cache_.put(slot.job->hashes[i], tokens);
    slot.tokens[i] = std::move(tokens);
    slot.to_encode.erase(slot.to_encode.begin());
    if (slot.to_encode.empty()) start_sequence(slot);
  } catch (const std::exception& e) {
    slot.encoding.reset();
    if (metrics_) metrics_->engine_errors++;
    Completion c;
    c.error = ApiError(dynamic_cast<const Error*>(&e) ? 400 : 500, std::string("image encoding failed: ") + e.what());
    end_job(slot, std::move(c));
  }
}

void Engine::start_sequence(Slot& slot) {
  Job& job = *slot.job;
  const size_t common = slot.cached;
  std::vector<int> new_ids(job.prompt.ids.begin() + int64_t(common), job.prompt.ids.end());
  Tensor embeds = model_.language().embed(new_ids);
  const int64_t hidden = embeds.dim(1);
  for (size_t i = 0; i < job.prompt.images.size(); i++) {
    const ImageSpan& span = job.prompt.images[i];
    if (size_t(span.begin + span.count) <= common) continue;
    const Tensor& tokens = *slot.tokens[i];
    if (tokens.dim(0) != span.count)
      DSVL2_FAIL_KIND(kInternal, "image %zu: %lld positions for %lld tokens", i, (long long)span.count,
                      (long long)tokens.dim(0));
    for (int64_t r = 0; r < span.count; r++) {
      const int64_t pos = span.begin + r;
      if (pos < int64_t(common)) continue;
      std::memcpy(embeds.f32() + (pos - int64_t(common)) * hidden, tokens.f32() + r * hidden, size_t(hidden) * 4);
    }
  }
  slot.tokens.clear();  // the image cache keeps them
  GenerateRequest gen = job.req.gen;
  slot.guard.reset();
  if (job.req.grounding != GroundingRequest::kNone) {
    slot.guard = std::make_shared<ground::RunawayGuard>();
    gen.guard = [g = slot.guard](std::string_view piece) { return g->feed(piece); };
  }
  if (!job.req.seeded) gen.sampling.seed = job.id * 0x9E3779B97F4A7C15ull;
  if (opt_.on_logits) gen.on_logits = [this, id = job.id](const float* l, int v) { opt_.on_logits(id, l, v); };
  std::shared_ptr<RequestStream> out = job.out;
  slot.seq = std::make_unique<Sequence>(&model_.tokenizer(), *slot.cache, gen, job.prompt.ids,
                                        [out](std::string_view piece) { out->push_text(piece); });
  slot.seq->set_prompt(embeds.f32(), int(new_ids.size()), hidden);
  slot.state = Slot::State::kRunning;
}

void Engine::end_job(Slot& slot, Completion c) {
  Job& job = *slot.job;
  // What the cache now holds: the prompt positions run so far, then the
  // generated tokens fed back.
  std::vector<uint64_t> keys = job.keys;
  if (slot.seq) {
    for (int32_t id : slot.seq->result().fed_ids) keys.push_back(uint32_t(id));
  }
  keys.resize(std::min(keys.size(), size_t(slot.cache->length())));
  slot.cache->truncate(int(keys.size()));
  slot.keys = std::move(keys);
  if (c.error) {  // a failed step may have left rows half-written
    slot.cache->clear();
    slot.keys.clear();
  }
  c.prompt_tokens = int(job.prompt.ids.size());
  c.cached_tokens = int(slot.cached);
  if (metrics_) metrics_->prompt_tokens += job.prompt.ids.size();
  std::shared_ptr<RequestStream> out = std::move(job.out);
  slot.seq.reset();
  slot.encoding.reset();
  slot.guard.reset();
  slot.job.reset();
  slot.state = Slot::State::kFree;
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_--;
  }
  // Last: a client that sees the end finds the slot already free.
  out->finish(std::move(c));
}

void Engine::check_deadlines() {
  const double t = now_s();
  for (auto& s : slots_) {
    if (s->state == Slot::State::kFree) continue;
    if (s->job->out->cancelled()) {
      if (metrics_) metrics_->cancellations++;
      Completion c;
      c.finish_reason = "stop";
      end_job(*s, std::move(c));
    } else if (t > s->job->deadline) {
      if (metrics_) metrics_->timeouts++;
      Completion c;
      if (s->seq) {
        c.text = s->seq->result().text;
        c.completion_tokens = int(s->seq->result().ids.size());
      }
      c.finish_reason = "length";
      c.timed_out = true;
      end_job(*s, std::move(c));
    }
  }
}

void Engine::step() {
  std::vector<Sequence*> live;
  std::vector<Slot*> owners;
  bool decoding = false;
  for (auto& s : slots_)
    if (s->state == Slot::State::kRunning) {
      live.push_back(s->seq.get());
      owners.push_back(s.get());
      decoding |= s->seq->pending_prompt_rows() == 0;
    }
  if (live.empty()) return;
  const double t0 = now_s();
  try {
    step_sequences(model_.language(), live, ops_, decoding ? opt_.prefill_chunk_decoding : opt_.prefill_chunk);
  } catch (...) {
    fail_running(std::current_exception());
    return;
  }
  const double t = now_s();
  if (metrics_) metrics_->step_seconds.observe(t - t0);
  for (Slot* s : owners) {
    const GenerateResult& r = s->seq->result();
    if (r.ids.size() > s->tokens_seen) {
      if (metrics_) {
        if (s->tokens_seen == 0) metrics_->time_to_first_token.observe(t - s->job->t_arrival);
        else metrics_->inter_token_latency.observe(t - s->last_token_t);
        metrics_->generated_tokens += r.ids.size() - s->tokens_seen;
      }
      s->tokens_seen = r.ids.size();
      s->last_token_t = t;
    }
    if (!s->seq->done()) continue;
    Completion c;
    c.text = r.text;
    c.completion_tokens = int(r.ids.size());
    c.finish_reason = r.finish_reason;
    if (r.finish == FinishReason::kError) {
      c.error = ApiError(500, "generation failed");
      if (metrics_) metrics_->engine_errors++;
    }
    if (s->job->req.grounding != GroundingRequest::kNone) {
      const int gi = grounding_image(s->job->req);
      const Image* img = gi >= 0 ? &s->job->req.images[size_t(gi)].image : nullptr;
      c.grounding = ground::parse_grounding(r.text, img ? img->width : 0, img ? img->height : 0);
    }
    end_job(*s, std::move(c));
  }
}

void Engine::fail_running(const std::exception_ptr& e) {
  std::string what = "the model failed";
  int status = 500;
  try {
    std::rethrow_exception(e);
  } catch (const Error& err) {
    what += std::string(": ") + err.what();
    if (err.kind() == ErrorKind::kOutOfResources) status = 503;
  } catch (const std::bad_alloc&) {
    what += ": out of memory";
    status = 503;
  } catch (const std::exception& err) {
    what += std::string(": ") + err.what();
  }
  for (auto& s : slots_)
    if (s->state == Slot::State::kRunning) {
      if (metrics_) metrics_->engine_errors++;
      Completion c;
      c.error = ApiError(status, what);
      end_job(*s, std::move(c));
    }
}

}  // namespace dsvl2::serve
