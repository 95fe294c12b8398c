// Which part of a job this process does: shard `index` of `count`. Items
// (images, records) are dealt round-robin by their position in the input, so
// every shard count covers every item exactly once and the same item always
// gives the same output, whatever shard made it.
//
//   ShardSpec s = ShardSpec::resolve(flag_index, flag_count);  // flags, else Slurm's array variables
//   for (size_t i = 0; i < n; i++) if (s.owns(i)) work(i);
#pragma once
#include <cstddef>
#include <string>

namespace dsvl2::jobs {

struct ShardSpec {
  int index = 0, count = 1;
  bool owns(size_t item) const { return item % size_t(count) == size_t(index); }
  // "stem-00003-of-00008" (count > 1) or "stem".
  std::string name(const std::string& stem) const;
  // The index flag when given (index >= 0). Else with a count (> 1):
  // SLURM_ARRAY_TASK_ID of that count (so a task resubmitted alone keeps its
  // shard), or 0 outside Slurm. Else SLURM_ARRAY_TASK_ID minus
  // SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT (a whole array), else 0
  // of 1. Throws Error for an index outside [0, count).
  static ShardSpec resolve(int index, int count);
};

}  // namespace dsvl2::jobs
