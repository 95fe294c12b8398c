// `dsvl2 recaption`: PixelProse-style dense recaptioning with DeepSeek-VL2's
// OCR hints and meta information, an automated OCR check and a quality
// judge; sharded, resumable, Slurm-ready (docs/recaption.md).
#include <cstdio>

#include "command.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "gen_options.h"
#include "ops/ops.h"
#include "recaption/recaption_job.h"
#include "split.h"

namespace dsvl2::cli {
namespace {

struct RecaptionFlags {
  GenFlags gen;
  recaption::RecaptionOptions o;
  std::string task = "caption", screen;
  int shard_index = -1, num_shards = 1;
  bool no_quality = false, no_ocr = false;
};

int run(RecaptionFlags f) {
  recaption::RecaptionOptions& o = f.o;
  if (f.task == "caption") o.prepare.task = recaption::RecaptionTask::kCaption;
  else if (f.task == "vqa") o.prepare.task = recaption::RecaptionTask::kVqa;
  else DSVL2_FAIL("--task must be caption or vqa, not \"%s\"", f.task.c_str());
  if (!f.screen.empty())
    for (const std::string& s : split(f.screen, ',')) {
      if (s == "safety") o.screen.push_back(recaption::ScreenKind::kSafety);
      else if (s == "watermark") o.screen.push_back(recaption::ScreenKind::kWatermark);
      else DSVL2_FAIL("--screen takes safety and/or watermark, not \"%s\"", s.c_str());
    }
  // The prompts are the pipeline's own (docs/recaption.md); a system text
  // would change every record silently.
  DSVL2_REQUIRE(f.gen.system.empty(), "recaption does not take --system: its prompts are fixed (docs/recaption.md)");
  DSVL2_REQUIRE(o.prepare.p_alt >= 0 && o.prepare.p_alt <= 1 && o.prepare.p_neg >= 0 && o.prepare.p_neg <= 1,
                "--p-alt and --p-neg are probabilities in [0, 1]");
  o.prepare.seed = uint64_t(f.gen.seed);
  o.prepare.ocr = !f.no_ocr;
  o.quality = !f.no_quality;
  o.request = f.gen.request();
  o.context = f.gen.context;
  o.quiet = f.gen.quiet;
  o.shard = jobs::ShardSpec::resolve(f.shard_index, f.num_shards);

  VisionLanguageModel model(f.gen.model);
  ThreadPool pool(f.gen.threads);
  Ops ops{&kernels_best(), &pool, f.gen.compute_mode()};
  f.gen.prepare(model, ops);
  recaption::RecaptionStats s = recaption::run_recaption(model, ops, o);
  std::fprintf(stderr, "dsvl2: recaption shard %d of %d: %lld units, %lld records (%lld failed), %lld done earlier, %.1f s\n",
               o.shard.index, o.shard.count, (long long)s.units, (long long)s.records, (long long)s.errors,
               (long long)s.skipped, s.seconds);
  return 0;
}

Command reg("recaption", "Dense captions (PixelProse prompts, OCR hints, EXIF meta) for WebDataset shards or manifests",
            [](CLI::App& app) {
              auto f = std::make_shared<RecaptionFlags>();
              f->gen.add_to(app);
              app.add_option("--input", f->o.inputs,
                             "WebDataset tars (brace patterns such as data-{00000..00099}.tar), JSONL manifests or "
                             "img2dataset folders")
                  ->required();
              app.add_option("--out", f->o.out_dir, "Output folder: <stem>.tar of KEY.json records, <stem>_stats.json")
                  ->required();
              app.add_option("--task", f->task, "caption (default) or vqa: regenerate answers to the records' questions");
              app.add_option("--p-alt", f->o.prepare.p_alt, "Probability of giving the alt-text as a reference (default 0.5)");
              app.add_option("--p-neg", f->o.prepare.p_neg, "Probability of asking for absent objects (default 0.2)");
              app.add_option("--shard-index", f->shard_index, "This shard (default: SLURM_ARRAY_TASK_ID; minus the array's first id when --num-shards is not given; else 0)");
              app.add_option("--num-shards", f->num_shards, "Shards in the job (default: SLURM_ARRAY_TASK_COUNT, else 1); give it so a task resubmitted alone keeps its shard")
                  ->check(CLI::Range(1, 1 << 20));
              app.add_flag("--resume", f->o.resume, "Continue an interrupted run in --out");
              app.add_flag("--copy-images", f->o.prepare.keep_image_bytes, "Also store each image in the output tar");
              app.add_option("--batch", f->o.slots, "Images captioned together (default 8)")->check(CLI::Range(1, 256));
              app.add_flag("--strip-prefix", f->o.strip_prefix, "Remove the forced \"This image displays:\" prefix");
              app.add_flag("--no-quality", f->no_quality, "Skip the writing-quality judge");
              app.add_option("--min-quality", f->o.min_quality, "Mark records scored below this (1-10) as filtered")
                  ->check(CLI::Range(0, 10));
              app.add_option("--screen", f->screen, "Zero-shot screening questions first: safety,watermark");
              app.add_option("--safety-threshold", f->o.safety_threshold, "P(yes) at which a record is filtered (0.5)");
              app.add_option("--watermark-threshold", f->o.watermark_threshold,
                             "P(yes) at which a record is filtered (0.85, PixelProse's watermark cut)");
              app.add_flag("--no-ocr", f->no_ocr, "No OCR: no hints, no OCR check");
              app.add_option("--ocr-lang", f->o.prepare.ocr_options.lang, "Tesseract languages, e.g. eng or eng+deu");
              return std::function<int()>([f] { return run(*f); });
            });

}  // namespace
}  // namespace dsvl2::cli
