#include "recaption/generation_slots.h"

#include "core/error.h"

namespace dsvl2::recaption {

GenerationSlots::GenerationSlots(const LanguageModel& lm, const Tokenizer* tok, const Ops& ops, int slots,
                                 int context, int max_rows)
    : lm_(lm), tok_(tok), ops_(ops), max_rows_(max_rows) {
  DSVL2_REQUIRE(slots >= 1 && slots <= 256, "the batch needs 1..256 slots, not %d", slots);
  slots_.resize(size_t(slots));
  for (Slot& s : slots_) s.cache = std::make_unique<KVCache>(lm.config(), context, kv_dtype_for(ops.compute));
}

GenerationSlots::~GenerationSlots() = default;

int GenerationSlots::running() const {
  int n = 0;
  for (const Slot& s : slots_) n += s.seq != nullptr;
  return n;
}

int GenerationSlots::free_slot() {
  for (size_t i = 0; i < slots_.size(); i++)
    if (!slots_[i].seq) {
      slots_[i].cache->clear();
      return int(i);
    }
  return -1;
}

void GenerationSlots::start(int slot, const std::vector<int32_t>& history, const float* embeds, int T,
                            const GenerateRequest& req, Done done) {
  Slot& s = slots_.at(size_t(slot));
  DSVL2_CHECK(!s.seq, "slot %d is busy", slot);
  auto seq = std::make_unique<Sequence>(tok_, *s.cache, req, history);
  seq->set_prompt(embeds, T, lm_.config().hidden_size);  // kTooLong when it does not fit
  s.seq = std::move(seq);
  s.done = std::move(done);
}

void GenerationSlots::step() {
  std::vector<Sequence*> live;
  for (Slot& s : slots_)
    if (s.seq) live.push_back(s.seq.get());
  if (live.empty()) return;
  std::exception_ptr failed, callback_error;
  try {
    step_sequences(lm_, live, ops_, max_rows_);
  } catch (...) {
    failed = std::current_exception();
  }
  for (Slot& s : slots_) {
    if (!s.seq || (!failed && !s.seq->done())) continue;
    std::exception_ptr err = failed ? failed : s.seq->error();
    GenerateResult r = s.seq->take_result();
    s.seq.reset();
    Done done = std::move(s.done);
    s.done = nullptr;
    // The other slots' results must still be delivered if one callback throws.
    try {
      done(std::move(r), err);
    } catch (...) {
      if (!callback_error) callback_error = std::current_exception();
    }
  }
  if (callback_error) std::rethrow_exception(callback_error);
}

}  // namespace dsvl2::recaption
