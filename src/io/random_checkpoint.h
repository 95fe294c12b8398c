// Random-weight DeepSeek-VL2 checkpoints with the released models' exact
// dimensions and file layout (config.json, processor_config.json, BF16
// safetensors, sharded with an index when large), for benchmarks and
// load tests without downloading the real weights.
//
//   std::string cfg = preset_config_json("tiny");
//   auto st = write_random_checkpoint("out/tiny", cfg, {.seed = 1});
//
// Weights are streamed to disk chunk by chunk from a counter-based PRNG: the
// model is never held in memory, and the bytes depend only on the seed (not
// on the thread count).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dsvl2 {

class ThreadPool;

// "tiny", "small", "base": the released configs (deepseek-ai/deepseek-vl2-tiny,
// -small, deepseek-vl2); "test": the same schema at toy size. Throws Error
// on an unknown name.
std::string preset_config_json(const std::string& preset);
const std::vector<std::string>& preset_names();
// processor_config.json as released (identical for the three models).
std::string processor_config_json();

struct RandomCheckpointOptions {
  uint64_t seed = 0;
  // Shard when the weights exceed this many bytes (0: always one file).
  uint64_t shard_bytes = 4'000'000'000ull;
  ThreadPool* pool = nullptr;  // optional: generate chunks in parallel
};

struct RandomCheckpointStats {
  uint64_t tensors = 0, params = 0, bytes = 0;
  int shards = 0;
};

// Writes <dir>/config.json (config_json verbatim, after validating it),
// processor_config.json and the weights; creates dir if needed. Throws Error.
struct TensorSpec;
struct VLConfig;
// Elements [first, first + count) of the random BF16 tensor `index` of
// expected_tensors(cfg) (`spec` is that entry), exactly as the checkpoint
// writer generates them: the same seed gives the same values whatever the
// container. `first` must be a multiple of kRandomBlock.
constexpr int64_t kRandomBlock = 1 << 16;
void random_tensor_chunk(const VLConfig& cfg, const TensorSpec& spec, uint64_t index, uint64_t seed, int64_t first,
                         int64_t count, uint16_t* out, ThreadPool* pool);

// The one random-weight generator, shared by the checkpoint writer and the
// in-memory RandomWeights of tests and benchmarks: BF16 values from
// counter-based splitmix64 streams (core/rng.h), one stream per kRandomBlock
// elements, so any block of any tensor can be made alone. kNormal is
// Irwin-Hall(4) scaled to std `scale` (bounded at 3.46 std); kUniform is
// U(-scale, scale); both plus `offset`.
enum class RandomFill { kOnes, kZeros, kNormal, kUniform };
struct RandomInit {
  RandomFill fill;
  float scale = 0;  // std for kNormal, half-width for kUniform
  float offset = 0;
};
// out[0, count) = elements [first, first + count) of `stream` under `init`;
// first a multiple of kRandomBlock.
void fill_random_bf16(uint16_t* out, int64_t count, uint64_t seed, uint64_t stream, int64_t first, RandomInit init);

RandomCheckpointStats write_random_checkpoint(const std::string& dir, const std::string& config_json,
                                              const RandomCheckpointOptions& opt = {});

}  // namespace dsvl2
