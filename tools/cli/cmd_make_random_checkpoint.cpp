// `dsvl2 make-random-checkpoint`: a folder with a released model's config and
// random BF16 weights of the right shapes, for benchmarks and load tests.
#include <chrono>
#include <filesystem>
#include <cstdio>

#include "command.h"
#include "core/error.h"
#include "core/file.h"
#include "core/thread_pool.h"
#include "io/checkpoint.h"
#include "io/model_config.h"
#include "io/random_checkpoint.h"
#include "io/tensor_registry.h"
#include "model/quantize.h"

namespace dsvl2::cli {
namespace {

struct Opts {
  std::string preset, out, config_json, tokenizer, type = "bf16";
  uint64_t seed = 0;
  double shard_gb = 4.0;
  int threads = 0;
};

Command reg("make-random-checkpoint", "Write a checkpoint folder with a released model's shapes and random weights",
            [](CLI::App& app) {
              auto o = std::make_shared<Opts>();
              app.add_option("--preset", o->preset, "tiny | small | base (released dimensions) | test | tiny-test (toy widths; tiny-test has the real vocabulary)");
              app.add_option("--out", o->out, "Output folder")->required();
              app.add_option("--seed", o->seed, "PRNG seed (same seed, same bytes)");
              app.add_option("--shard-size", o->shard_gb, "Shard the weights above this many GB (0: one file)");
              app.add_option("-t,--threads", o->threads, "Generator threads (default: all)");
              app.add_option("--type", o->type,
                             "bf16 (safetensors folder, default), or q4_m, q8_0, q4_0 or iq4_nl (DIR/model-TYPE.gguf: "
                             "language matrices in that type, as `quantize --type`)");
              app.add_option("--tokenizer", o->tokenizer,
                             "Copy this tokenizer.json (and the tokenizer_config.json beside it) into the folder");
              // Hidden: any config.json in the DeepseekVLV2 schema instead of a preset.
              app.add_option("--config-json", o->config_json)->group("");
              return std::function<int()>([o] {
                if (o->preset.empty() == o->config_json.empty())
                  DSVL2_FAIL("make-random-checkpoint: give exactly one of --preset or --config-json");
                std::string cfg = o->config_json.empty() ? preset_config_json(o->preset) : read_file(o->config_json);
                ThreadPool pool(o->threads);
                if (o->type != "bf16" && o->type != "q8_0" && o->type != "q4_0" && o->type != "iq4_nl" &&
                    o->type != "q4_m")
                  DSVL2_FAIL("--type must be bf16, q4_m, q8_0, q4_0 or iq4_nl");
                if (o->type != "bf16") {
                  std::filesystem::create_directories(o->out);
                  write_file(path_join(o->out, "config.json"), cfg);
                  write_file(path_join(o->out, "processor_config.json"), processor_config_json());
                  const std::string gguf = path_join(o->out, "model-" + o->type + ".gguf");
                  auto t0 = std::chrono::steady_clock::now();
                  QuantizeStats st = write_random_gguf(gguf, cfg, o->seed, &pool, o->type);
                  double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                  std::printf("%s: %lld tensors (%lld in %s), %.2f GB in %.1f s\n", gguf.c_str(), (long long)st.tensors,
                              (long long)st.quantized, o->type.c_str(), double(st.bytes_out) / 1e9, sec);
                  Checkpoint ck(gguf);
                  validate_checkpoint(ck, load_vl_config(o->out));
                  std::printf("%s: loads and validates\n", gguf.c_str());
                } else {
                  RandomCheckpointOptions opt;
                  opt.seed = o->seed;
                  opt.shard_bytes = uint64_t(o->shard_gb * 1e9);
                  opt.pool = &pool;
                  auto t0 = std::chrono::steady_clock::now();
                  RandomCheckpointStats st = write_random_checkpoint(o->out, cfg, opt);
                  double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                  std::printf("%s: %llu tensors, %.1f M params, %.2f GB in %d file%s, %.1f s (%.2f GB/s)\n",
                              o->out.c_str(), (unsigned long long)st.tensors, double(st.params) / 1e6,
                              double(st.bytes) / 1e9, st.shards, st.shards == 1 ? "" : "s", sec,
                              double(st.bytes) / 1e9 / std::max(sec, 1e-9));
                  // Read it back as any checkpoint would be: every shard parsed, every tensor checked.
                  Checkpoint ck(o->out);
                  validate_checkpoint(ck, load_vl_config(o->out));
                  std::printf("%s: loads and validates (%zu tensors)\n", o->out.c_str(), ck.names().size());
                }
                if (!o->tokenizer.empty()) {
                  std::string src = is_directory(o->tokenizer) ? path_join(o->tokenizer, "tokenizer.json") : o->tokenizer;
                  write_file(path_join(o->out, "tokenizer.json"), read_file(src));
                  std::string cfg_src = src.substr(0, src.find_last_of('/') + 1) + "tokenizer_config.json";
                  if (file_exists(cfg_src)) write_file(path_join(o->out, "tokenizer_config.json"), read_file(cfg_src));
                  std::printf("%s: tokenizer from %s\n", o->out.c_str(), src.c_str());
                }
                return 0;
              });
            });

}  // namespace
}  // namespace dsvl2::cli
