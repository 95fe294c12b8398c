// `dsvl2 synth`: DeepSeek-VL2 training records (visual-prompt QA, grounding,
// grounded conversation, in-context grounding, negatives) from detection and
// segmentation annotations; sharded, resumable, deterministic (docs/synth.md).
#include <cstdio>

#include "command.h"
#include "core/error.h"
#include "split.h"
#include "synth/synth_job.h"

namespace dsvl2::cli {
namespace {

struct SynthFlags {
  synth::SynthOptions o;
  std::string tasks = "vip,ground,gcg,icg,neg", mix;
  int shard_index = -1, num_shards = 1;
};

int run(SynthFlags f) {
  for (const std::string& t : split(f.tasks, ',')) f.o.tasks.push_back(synth::parse_task(t));
  if (!f.mix.empty())
    for (const std::string& kv : split(f.mix, ',')) {
      const size_t eq = kv.find('=');
      DSVL2_REQUIRE(eq != std::string::npos, "--mix wants task=weight,...; got \"%s\"", kv.c_str());
      char* end = nullptr;
      const std::string w = kv.substr(eq + 1);
      const double weight = std::strtod(w.c_str(), &end);
      DSVL2_REQUIRE(!w.empty() && *end == 0 && weight >= 0 && weight < 1e9, "--mix %s: the weight must be >= 0",
                    kv.c_str());
      f.o.mix[synth::parse_task(kv.substr(0, eq))] = weight;
    }
  f.o.shard = jobs::ShardSpec::resolve(f.shard_index, f.num_shards);
  synth::SynthStats s = synth::run_synth(f.o);
  std::fprintf(stderr, "dsvl2: synth %s: %lld records, %lld errors, %lld done earlier, %.1f s -> %s\n",
               f.o.shard.name("synth").c_str(), (long long)s.records, (long long)s.errors, (long long)s.skipped,
               s.seconds, s.output.c_str());
  return 0;
}

Command reg("synth", "Training records (grounding, visual prompts, negatives) from COCO/RefCOCO/Flickr30k/VG annotations",
            [](CLI::App& app) {
              auto f = std::make_shared<SynthFlags>();
              app.add_option("--annotations", f->o.annotations,
                             "Annotation files: COCO instances, then RefCOCO refs, Flickr30k Entities or VG regions JSON")
                  ->required();
              app.add_option("--images", f->o.images_dir, "Folder the annotations' file names are relative to")->required();
              app.add_option("--out", f->o.out_dir, "Output folder (JSONL shards, images/, ledgers, stats)")->required();
              app.add_option("--tasks", f->tasks, "Tasks to make: vip,ground,gcg,icg,neg (default all)");
              app.add_option("--mix", f->mix, "Task weights, e.g. ground=3,vip=2,neg=1 (default 1 each)");
              app.add_option("--seed", f->o.seed, "Seed: the same inputs and seed give the same records");
              app.add_option("--shard-index", f->shard_index, "This shard (default: SLURM_ARRAY_TASK_ID; minus the array's first id when --num-shards is not given; else 0)");
              app.add_option("--num-shards", f->num_shards, "Shards in the job (default: SLURM_ARRAY_TASK_COUNT, else 1); give it so a task resubmitted alone keeps its shard")
                  ->check(CLI::Range(1, 1 << 20));
              app.add_flag("--resume", f->o.resume, "Continue an interrupted run in --out");
              app.add_option("--preview", f->o.preview, "Also write <shard>_preview.png: the first N records as a contact sheet")
                  ->check(CLI::Range(0, 256));
              app.add_flag("-q,--quiet", f->o.quiet, "No progress on stderr");
              return std::function<int()>([f] { return run(*f); });
            });

}  // namespace
}  // namespace dsvl2::cli
