// Continuous batching for a data job: a fixed set of slots, each with a KV
// cache reserved once, stepped together by the one generation step
// (model/sequence.h step_sequences, which the server drives too). A prompt
// starts in any free slot and its prefill shares each forward with the
// other slots' decode rows; a finished sequence frees its slot at once, so
// the batch stays full while work is queued.
//
//   GenerationSlots slots(model.language(), &model.tokenizer(), ops, 8, 2048);
//   int s = slots.free_slot();                 // -1 when all are busy
//   slots.cache(s) ... optional probes on the slot's cache (kept as prefix)
//   slots.start(s, ids, embeds_after_prefix, req, [](GenerateResult&& r, std::exception_ptr e) { ... });
//   while (slots.running() > 0) slots.step();
#pragma once
#include <exception>
#include <functional>
#include <memory>
#include <vector>

#include "model/sequence.h"

namespace dsvl2::recaption {

class GenerationSlots {
 public:
  using Done = std::function<void(GenerateResult&&, std::exception_ptr)>;

  // `max_rows`: rows of one forward (decode rows first, then prompt chunks).
  GenerationSlots(const LanguageModel& lm, const Tokenizer* tok, const Ops& ops, int slots, int context,
                  int max_rows = kDefaultPrefillChunk);
  ~GenerationSlots();

  int size() const { return int(slots_.size()); }
  int running() const;
  // A free slot, its cache cleared; -1 when every slot is busy.
  int free_slot();
  KVCache& cache(int slot) { return *slots_[size_t(slot)].cache; }

  // Starts generating in `slot`: `embeds` [T, hidden] are the prompt rows
  // after what the slot's cache already holds; `history` all prompt ids (for
  // the repetition penalty). `done` runs from step() when the sequence ends
  // (its error when a callback or the forward failed).
  void start(int slot, const std::vector<int32_t>& history, const float* embeds, int T, const GenerateRequest& req,
             Done done);
  // One batched forward over every running slot; calls `done` of those that
  // finished. A failed forward fails every sequence of that step (they are
  // reported, the slots freed) and step() goes on: one bad batch never stops
  // the job. `done` must not call start(); if one throws, the others still
  // run and step() rethrows the first error afterwards.
  void step();

 private:
  struct Slot {
    std::unique_ptr<KVCache> cache;
    std::unique_ptr<Sequence> seq;
    Done done;
  };
  const LanguageModel& lm_;
  const Tokenizer* tok_;
  Ops ops_;
  int max_rows_;
  std::vector<Slot> slots_;
};

}  // namespace dsvl2::recaption
