#include "jobs/shard_spec.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/error.h"

namespace dsvl2::jobs {
namespace {
// A Slurm variable as an int, or `fallback` when unset.
int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  DSVL2_REQUIRE(*end == 0 && x >= 0 && x < (1L << 30), "%s=%s is not a shard number", name, v);
  return int(x);
}
}  // namespace

std::string ShardSpec::name(const std::string& stem) const {
  if (count == 1) return stem;
  char buf[64];
  std::snprintf(buf, sizeof buf, "-%05d-of-%05d", index, count);
  return stem + buf;
}

ShardSpec ShardSpec::resolve(int index, int count) {
  ShardSpec s;
  const bool slurm = std::getenv("SLURM_ARRAY_TASK_ID") != nullptr;
  if (index >= 0) {
    s.index = index;
    s.count = std::max(count, 1);
  } else if (count > 1) {
    // The job's size is known: the array task id is the shard itself, so a
    // task resubmitted alone (--array=5, where Slurm says COUNT=1, MIN=5)
    // is still shard 5.
    s.index = slurm ? env_int("SLURM_ARRAY_TASK_ID", 0) : 0;
    s.count = count;
  } else if (slurm) {
    s.index = env_int("SLURM_ARRAY_TASK_ID", 0) - env_int("SLURM_ARRAY_TASK_MIN", 0);
    s.count = env_int("SLURM_ARRAY_TASK_COUNT", 1);
  }
  DSVL2_REQUIRE(s.count >= 1 && s.index >= 0 && s.index < s.count,
                "shard %d of %d: the index must be in [0, %d) (with --num-shards, Slurm array ids count from 0: "
                "--array=0-%d)",
                s.index, s.count, s.count, s.count - 1);
  return s;
}

}  // namespace dsvl2::jobs
