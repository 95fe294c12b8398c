#include "recaption/recaption_job.h"

#include <chrono>
#include <deque>
#include <filesystem>
#include <memory>

#include "core/error.h"
#include "core/file.h"
#include "core/rng.h"
#include "dataset/inputs.h"
#include "dataset/tar_writer.h"
#include "jobs/progress.h"
#include "jobs/shard_writer.h"
#include "recaption/generation_slots.h"
#include "recaption/record_json.h"
#include "recaption/run_stats.h"
#include "recaption/screening.h"
#include "text/chat_template.h"
#include "vision/layout.h"

namespace dsvl2::recaption {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// One input unit: records flow preparer -> slots -> in-order writer.
class UnitRun {
 public:
  UnitRun(const VisionLanguageModel& m, const Ops& ops, const RecaptionOptions& o, GenerationSlots& slots,
          const YesNoTokens* yes_no)
      : m_(m), ops_(ops), o_(o), slots_(slots), yes_no_(yes_no) {}

  // Returns the records this run wrote.
  int64_t run(jobs::ShardWriter& out, RecordPreparer& prep, jobs::Progress& progress);

 private:
  struct Pending {
    Record r;
    Clock::time_point started;
  };
  void begin_caption(Pending& p, int slot);
  void begin_quality(Pending& p, int slot);
  void caption_done(Pending& p, GenerateResult&& g, std::exception_ptr e);
  void finish(Pending& p);

  const VisionLanguageModel& m_;
  const Ops& ops_;
  const RecaptionOptions& o_;
  GenerationSlots& slots_;
  const YesNoTokens* yes_no_;
  std::deque<std::unique_ptr<Pending>> order_;  // input order, head written first
  std::deque<Pending*> quality_queue_;
};

std::vector<int64_t> to_int64(const std::vector<int32_t>& v) { return {v.begin(), v.end()}; }

void UnitRun::begin_caption(Pending& p, int slot) {
  Record& r = p.r;
  const auto t0 = Clock::now();
  const Tokenizer& tok = m_.tokenizer();
  // Image tokens once; every prompt of this record (screening questions and
  // the caption prompt) splices the same rows.
  PreprocessResult pre = preprocess_images({r.image}, m_.processor(), CropMode::kOn);
  Tensor image_tokens = m_.vision().embed_images(pre.pixel_values, pre.images_spatial_crop, ops_);
  const int64_t n_image = image_tokens.dim(0);
  auto embeds_for = [&](const std::string& text, std::vector<int32_t>& ids) {
    PromptIds p = build_prompt_ids(tok, {{ChatRole::kUser, text, 1}}, std::span<const int64_t>(&n_image, 1));
    ids = p.ids;
    Tensor e = m_.language().embed(std::vector<int>(ids.begin(), ids.end()));
    splice_image_embeddings(e, to_int64(ids), m_.image_token_id(), image_tokens);
    return e;
  };
  std::vector<int32_t> ids;
  Tensor embeds = embeds_for(r.prompt, ids);
  const int64_t hidden = embeds.dim(1);
  // Screening questions share the caption prompt's leading rows (the image
  // and the role tag) in the slot's cache; each question's own rows are
  // dropped after its answer is read, so the cache ends holding the
  // caption prompt's first rows only.
  KVCache& cache = slots_.cache(slot);
  for (ScreenKind kind : o_.screen) {
    std::vector<int32_t> q_ids;
    Tensor q = embeds_for(std::string(screening_question(kind)), q_ids);
    size_t common = 0;
    while (common < ids.size() && common < q_ids.size() && ids[common] == q_ids[common]) common++;
    common = std::min({common, ids.size() - 1, q_ids.size() - 1});
    if (size_t(cache.length()) > common) cache.truncate(int(common));
    if (size_t(cache.length()) < common)
      m_.language().forward(embeds.f32() + int64_t(cache.length()) * hidden, int(common) - cache.length(), cache,
                            ops_, LogitsMode::kNone);
    Tensor logits = m_.language().forward(q.f32() + int64_t(common) * hidden, int(q_ids.size() - common), cache,
                                          ops_, LogitsMode::kLast);
    r.screen[screen_name(kind)] = yes_no_->score(logits.f32(), int(logits.dim(1)));
    cache.truncate(int(common));
  }
  const int prefix = cache.length();
  r.timings.encode_s = since(t0);
  r.prompt_tokens = int(ids.size());
  p.started = Clock::now();
  // Each record samples from its own stream (seed, key): with --temp > 0
  // records are independent draws, and one record's draw does not depend on
  // which others ran.
  GenerateRequest req = o_.request;
  req.sampling.seed = hash_string(r.key, o_.request.sampling.seed);
  slots_.start(slot, ids, embeds.f32() + int64_t(prefix) * hidden, int(ids.size()) - prefix, req,
               [this, &p](GenerateResult&& g, std::exception_ptr e) { caption_done(p, std::move(g), e); });
}

std::string what(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown error";
  }
}

void UnitRun::caption_done(Pending& p, GenerateResult&& g, std::exception_ptr e) {
  Record& r = p.r;
  r.timings.caption_s = since(p.started);
  r.image = Image{r.image.width, r.image.height, {}};  // pixels no longer needed
  if (e) {
    r.error = "captioning failed: " + what(e);
    r.complete = true;
    return;
  }
  // Whatever fails below fails this record only (a record that threw would
  // otherwise stop every resume at the same place).
  try {
    r.finish_reason = g.finish_reason;
    r.caption_tokens = int(g.ids.size());
    r.raw_caption = g.text;
    r.pii = redact_pii(r.raw_caption);
    r.caption = o_.strip_prefix ? strip_caption_prefix(r.pii.text) : r.pii.text;
    const bool caption_task = o_.prepare.task == RecaptionTask::kCaption;
    if (caption_task) r.style = style_class(r.caption);
    if (o_.prepare.ocr) r.ocr_check = ocr::check_caption(r.caption, r.ocr);  // no OCR: nothing to check against
    for (const auto& [name, score] : r.screen) {
      const double limit = name == "safety" ? o_.safety_threshold : o_.watermark_threshold;
      if (score >= limit && r.filtered.empty()) r.filtered = name + " score " + std::to_string(score) + " >= threshold";
    }
    // The judge scores descriptions; a VQA answer is not one.
    if (o_.quality && caption_task && !r.caption.empty()) {
      quality_queue_.push_back(&p);
      return;
    }
  } catch (const std::exception& ex) {
    r.error = std::string("post-processing failed: ") + ex.what();
  }
  r.complete = true;
}

void UnitRun::begin_quality(Pending& p, int slot) {
  const Tokenizer& tok = m_.tokenizer();
  PromptIds ids = build_prompt_ids(tok, {{ChatRole::kUser, build_quality_prompt(p.r.caption), 0}}, {});
  Tensor e = m_.language().embed(std::vector<int>(ids.ids.begin(), ids.ids.end()));
  GenerateRequest req;
  req.max_new_tokens = 4;  // "7", "10", "8/10": a few tokens; more is not a score
  req.sampling = {};       // greedy, no penalty: the judge's most likely answer
  req.sampling.repetition_penalty = 1.0f;
  p.started = Clock::now();
  slots_.start(slot, ids.ids, e.f32(), int(ids.ids.size()), req, [this, &p](GenerateResult&& g, std::exception_ptr e) {
    Record& r = p.r;
    r.timings.quality_s = since(p.started);
    if (e) {
      r.quality_error = what(e);
    } else {
      r.quality_answer = g.text;
      r.quality = parse_quality_score(g.text);
      if (r.quality && o_.min_quality > 0 && *r.quality < o_.min_quality && r.filtered.empty())
        r.filtered = "quality " + std::to_string(*r.quality) + " < " + std::to_string(o_.min_quality);
    }
    r.complete = true;
  });
}

int64_t UnitRun::run(jobs::ShardWriter& out, RecordPreparer& prep, jobs::Progress& progress) {
  int64_t written = 0;
  bool input_done = false;
  for (;;) {
    // Fill free slots: judge calls first (they complete records), then new images.
    for (int slot; !quality_queue_.empty() && (slot = slots_.free_slot()) >= 0;) {
      Pending* p = quality_queue_.front();
      quality_queue_.pop_front();
      try {
        begin_quality(*p, slot);
      } catch (const std::exception& e) {  // the caption stands; only its score is missing
        p->r.quality_error = e.what();
        p->r.complete = true;
      }
    }
    while (!input_done && quality_queue_.empty()) {
      const int slot = slots_.free_slot();
      if (slot < 0) break;
      // A free slot always waits for the next record (OCR runs ahead, so
      // it is usually there): which records share a forward then depends on
      // the input alone, not on thread timing, and a run repeats exactly.
      std::optional<Record> r = prep.next(true);
      if (!r) {
        input_done = prep.finished();
        break;
      }
      order_.push_back(std::make_unique<Pending>(Pending{std::move(*r), {}}));
      Pending& p = *order_.back();
      if (!p.r.error.empty()) {
        p.r.complete = true;
        continue;
      }
      try {
        begin_caption(p, slot);
      } catch (const std::exception& e) {
        p.r.error = std::string("encoding failed: ") + e.what();
        p.r.image = {};
        p.r.complete = true;
      }
    }
    if (slots_.running() > 0) slots_.step();
    // Records go out in input order, each with the ledger's item.
    while (!order_.empty() && order_.front()->r.complete) {
      Record& r = order_.front()->r;
      const nlohmann::json j = record_to_json(r, o_.prepare.task);
      out.add_raw(r.item, record_members(r, j), r.error);
      order_.pop_front();
      written++;
      progress.advance();
    }
    if (input_done && order_.empty() && slots_.running() == 0 && quality_queue_.empty()) break;
  }
  return written;
}

}  // namespace

RecaptionStats run_recaption(const VisionLanguageModel& m, const Ops& ops, const RecaptionOptions& o) {
  const auto t0 = Clock::now();
  DSVL2_REQUIRE(!o.out_dir.empty(), "recaption needs an output folder");
  DSVL2_REQUIRE(m.has_tokenizer() && m.image_token_id() >= 0, "%s: recaptioning needs the tokenizer with its <image> token",
                m.dir().c_str());
  std::vector<dataset::InputUnit> units = dataset::expand_inputs(o.inputs);
  std::filesystem::create_directories(o.out_dir);
  GenerationSlots slots(m.language(), &m.tokenizer(), ops, o.slots, o.context);
  std::optional<YesNoTokens> yes_no;
  if (!o.screen.empty()) yes_no.emplace(m.tokenizer());
  RecaptionStats st;
  for (size_t u = 0; u < units.size(); u++) {
    if (!o.shard.owns(u)) continue;
    const dataset::InputUnit& unit = units[u];
    st.units++;
    // A commit every few records: a record costs seconds of model time, an fsync
    // and a ledger transaction milliseconds, and a kill then loses little.
    jobs::ShardWriter out(o.out_dir, unit.stem, o.resume, 4, ".tar");
    const std::string stats_path = o.out_dir + "/" + unit.stem + "_stats.json";
    if (out.finished()) {
      // Done by an earlier run; its stats are rebuilt from the output if a
      // kill came between the rename and the stats file.
      if (!std::filesystem::exists(stats_path)) write_run_stats(out.output_path(), stats_path, {});
      st.skipped += out.items();
      st.outputs.push_back(out.output_path());
      continue;
    }
    const auto unit_t0 = Clock::now();
    RecordPreparer prep(unit, out.committed_items(), o.prepare, size_t(o.slots) + 2);
    jobs::Progress progress("recaption " + unit.stem, -1, o.quiet);
    UnitRun run(m, ops, o, slots, yes_no ? &*yes_no : nullptr);
    const int64_t written = run.run(out, prep, progress);
    progress.finish();
    st.skipped += prep.skipped();
    st.records += written;
    st.errors += int64_t(out.new_errors().size());
    const std::string final_path = out.finish(dataset::tar_end());
    RunInfo info;
    info.records_this_run = written;
    info.seconds_this_run = since(unit_t0);
    info.skipped = prep.skipped();
    write_run_stats(final_path, stats_path, info);
    st.outputs.push_back(final_path);
  }
  st.seconds = since(t0);
  return st;
}

}  // namespace dsvl2::recaption
