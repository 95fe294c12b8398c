// `dsvl2 recaption` as a library call: PixelProse-style dense recaptioning
// with DeepSeek-VL2's additions (OCR hints, EXIF meta, the original caption),
// an automated OCR check, a writing-quality judge and optional zero-shot
// screening. Input units (WebDataset tars, manifests, img2dataset folders)
// are dealt round-robin to this shard; each becomes OUT/<stem>.tar of
// KEY.json records plus OUT/<stem>_stats.json, written through a resumable
// shard (jobs/shard_writer.h): kill -9 and --resume lose and repeat nothing.
//
//   RecaptionOptions o;  o.inputs = {"data-{00000..00007}.tar"};  o.out_dir = "out";
//   RecaptionStats s = run_recaption(model, ops, o);
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "jobs/shard_spec.h"
#include "model/sequence.h"
#include "model/vl_model.h"
#include "recaption/record_prep.h"

namespace dsvl2::recaption {

struct RecaptionOptions {
  std::vector<std::string> inputs;  // files, folders, brace patterns
  std::string out_dir;
  PrepareOptions prepare;           // task, seed, p_alt, p_neg, OCR
  GenerateRequest request;          // caption sampling and max_new_tokens
  jobs::ShardSpec shard;
  bool resume = false, quiet = false;
  int slots = 8;                    // sequences decoded together
  int context = 0;                  // per slot; 0: the model's
  bool strip_prefix = false;        // drop "This image displays:"
  bool quality = true;              // run the writing-quality judge
  int min_quality = 0;              // below: the record is marked "filtered"
  std::vector<ScreenKind> screen;   // zero-shot questions asked before captioning
  double safety_threshold = 0.5, watermark_threshold = 0.85;  // at or above: "filtered"
};

struct RecaptionStats {
  int64_t units = 0, records = 0, errors = 0, skipped = 0;  // skipped: done by an earlier run
  double seconds = 0;
  std::vector<std::string> outputs;
};

// Throws Error when the job cannot run (no inputs, an input unit that cannot
// be opened, an earlier run's output without resume, a write failure);
// failures of single records are written as records with their error.
RecaptionStats run_recaption(const VisionLanguageModel& model, const Ops& ops, const RecaptionOptions& o);

}  // namespace dsvl2::recaption
