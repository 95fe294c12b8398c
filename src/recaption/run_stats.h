// OUT/<stem>_stats.json, like img2dataset's per-shard stats: counts, errors,
// the OCR check's three categories (PixelProse's correct / incorrect / not
// captured), prompt, style and quality histograms, and this run's
// throughput. Counts are read back from the finished shard itself, so a
// shard finished over several resumed runs reports all its records.
#pragma once
#include <cstdint>
#include <string>

namespace dsvl2::recaption {

struct RunInfo {
  int64_t records_this_run = 0, skipped = 0;
  double seconds_this_run = 0;
};

// Reads `shard_tar` (a finished output) and writes the stats atomically.
void write_run_stats(const std::string& shard_tar, const std::string& stats_path, const RunInfo& info);

}  // namespace dsvl2::recaption
