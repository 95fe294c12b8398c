// `dsvl2 synth` as a library call: read the annotation files, deal their
// images to this shard, make one record per image with a task drawn from the
// mix (seeded by the image, so any shard count gives the same records), and
// write them through a resumable shard (jobs/shard_writer.h) with drawn and
// erased images beside them.
//
//   SynthOptions o;  o.annotations = {"instances.json", "refs.json"};  o.images_dir = "coco/val2017";
//   o.out_dir = "out";  o.tasks = {Task::kGround, Task::kVip};
//   SynthStats s = run_synth(o);
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "jobs/shard_spec.h"
#include "synth/tasks.h"

namespace dsvl2::synth {

struct SynthOptions {
  std::vector<std::string> annotations;  // COCO files first; a refs file merges into the COCO file before it
  std::string images_dir, out_dir;
  std::vector<Task> tasks;
  std::map<Task, double> mix;            // weights; tasks not named weigh 1
  uint64_t seed = 0;
  jobs::ShardSpec shard;
  bool resume = false, quiet = false;
  int preview = 0;                       // > 0: also write <shard>_preview.png of the first N records
};

struct SynthStats {
  int64_t images = 0, records = 0, errors = 0, skipped = 0;  // skipped: committed by an earlier run
  std::map<std::string, int64_t> by_task;
  int64_t annotation_errors = 0;
  double seconds = 0;
  std::string output, stats_path;
};

// Throws Error when the job cannot run (unreadable annotation file, bad
// options, an earlier run's output without resume); per-image failures are
// counted and kept in the ledger.
SynthStats run_synth(const SynthOptions& o);

// The task an image gets: drawn from the weights of the tasks applicable to
// it, seeded by (seed, dataset, image id). -1 when none applies.
int choose_task(const std::vector<Task>& tasks, const std::map<Task, double>& mix, uint64_t seed,
                const AnnotatedImage& img, const TaskContext& ctx);

}  // namespace dsvl2::synth
