#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/file.h"
#include "core/heap.h"
#include "core/rng.h"
#include "io/model_config.h"
#include "io/tensor_registry.h"
#include "jobs/progress.h"
#include "text/tokenizer.h"
#include "train/adamw.h"
#include "train/checkpoint_out.h"
#include "train/schedule.h"
#include "train/train_state.h"
#include "train/vl_train.h"

namespace dsvl2 {

namespace fs = std::filesystem;

namespace {

bool starts(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

std::string fingerprint(const TrainerConfig& c) {
  std::ostringstream f;
  f << "stage=" << (c.stage == TrainerConfig::Stage::kAlign ? "align" : "sft") << ";vision=" << c.train_vision
    << ";projector=" << c.train_projector << ";lora=" << c.lora.rank << "/" << c.lora.alpha << ";targets=";
  for (const std::string& t : c.lora.targets) f << t << ",";
  f << ";accum=" << c.grad_accum << ";seed=" << c.seed << ";data=" << fs::path(c.data).filename().string();
  return f.str();
}

// The sample order of one epoch: a Fisher-Yates shuffle keyed by (seed, epoch).
std::vector<size_t> epoch_order(size_t n, uint64_t seed, int64_t epoch) {
  std::vector<size_t> o(n);
  for (size_t i = 0; i < n; i++) o[i] = i;
  Rng rng(seed, uint64_t(epoch) + 1);
  for (size_t i = n; i > 1; i--) std::swap(o[i - 1], o[size_t(rng.next() % i)]);
  return o;
}

// Keeps the log lines of steps <= `step` (a resumed run redoes the rest).
void trim_log(const std::string& path, int64_t step) {
  if (!file_exists(path)) return;
  std::istringstream in(read_file(path));
  std::string line, kept;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("step") && j["step"].is_number_integer() &&
        j["step"].get<int64_t>() <= step)
      kept += line + "\n";
  }
  write_file(path, kept);
}

void pick_trainable(const TrainerConfig& c, ParamStore& ps) {
  const bool align = c.stage == TrainerConfig::Stage::kAlign;
  const bool full_lm = !align && c.lora.rank == 0;
  ps.set_trainable([&](const std::string& n) {
    if (starts(n, "projector.") || n == "image_newline" || n == "view_seperator") return align || c.train_projector;
    if (starts(n, "vision.")) return c.train_vision;
    if (starts(n, "language.")) return full_lm && n.find("e_score_correction_bias") == std::string::npos;
    return false;
  });
}

}  // namespace

TrainerReport run_training(const TrainerConfig& c, ThreadPool& pool) {
  DSVL2_REQUIRE(c.grad_accum >= 1 && c.epochs >= 1 && c.lr > 0 && c.clip >= 0 && c.warmup >= 0 && c.min_lr >= 0 &&
                    c.min_lr <= c.lr,
                "train: grad_accum, epochs and lr must be positive, clip and warmup non-negative, 0 <= min_lr <= lr");
  DSVL2_REQUIRE(c.export_dir.empty() || c.lora.rank == 0,
                "train: --export writes trained tensors; merge a LoRA adapter with merge-lora instead");
  DSVL2_REQUIRE(c.export_dir.empty() || !std::filesystem::exists(c.export_dir) ||
                    !std::filesystem::equivalent(c.export_dir, c.model_dir),
                "train: the export folder must differ from the model folder");
  keep_freed_activations();  // every step allocates and frees the same large activations
  const VLConfig cfg = load_vl_config(c.model_dir);
  const ProcessorConfig proc = processor_config_for(c.model_dir, cfg);
  DSVL2_REQUIRE(file_exists(path_join(c.model_dir, "tokenizer.json")),
                "%s: training needs the model's tokenizer.json to build samples", c.model_dir.c_str());
  const Tokenizer tok = Tokenizer::load(c.model_dir);
  fs::create_directories(c.out_dir);

  SftReadOptions ro;
  ro.on_bad_line = c.on_bad_line;
  ro.limits.max_length = c.max_length > 0 ? c.max_length : cfg.language.max_position_embeddings;
  const SftIndex index = index_sft_jsonl(c.data, tok, proc, ro);
  TrainerReport rep;
  rep.bad_lines = index.bad.count;
  if (index.bad.count > 0) {  // a warning, not progress: -q (no progress bar) keeps it
    std::fprintf(stderr, "train: skipped %lld bad line(s) of %lld:\n", (long long)index.bad.count,
                 (long long)index.total_lines);
    for (const std::string& r : index.bad.first) std::fprintf(stderr, "  %s\n", r.c_str());
  }
  DSVL2_REQUIRE(!index.lines.empty(), "%s: no usable training sample", c.data.c_str());
  const SftJsonlReader reader(c.data, tok, proc, ro);

  const Checkpoint ckpt(c.model_dir);
  validate_checkpoint(ckpt, cfg);  // every shape as the config says, before any kernel reads them
  ParamStore ps(ckpt, is_unused_parameter);
  pick_trainable(c, ps);
  VlTrain model(cfg, ps);
  if (c.lora.rank > 0) attach_lora(model.decoder(), ps, c.lora, c.seed);
  rep.trainable = ps.trainable_numel();
  DSVL2_REQUIRE(rep.trainable > 0, "train: nothing to train with these settings");

  AdamWConfig ac;
  ac.lr = c.lr;
  ac.weight_decay = c.weight_decay;
  AdamW opt(ac);
  const int64_t n = int64_t(index.lines.size());
  const int64_t total = c.max_steps > 0 ? c.max_steps : (int64_t(c.epochs) * n + c.grad_accum - 1) / c.grad_accum;
  const LrSchedule sched{c.lr, c.min_lr, c.warmup, total};
  TrainProgress prog;
  prog.fingerprint = fingerprint(c);
  const std::string log_path = path_join(c.out_dir, "train_log.jsonl");
  if (c.resume) {
    rep.resumed = load_train_checkpoint(c.out_dir, ps, opt, prog.fingerprint, &prog);
    if (!rep.resumed) std::fprintf(stderr, "train: %s has no checkpoint; starting from step 0\n", c.out_dir.c_str());
  }
  trim_log(log_path, rep.resumed ? prog.step : 0);
  if (!rep.resumed)  // a fresh run: outputs of an earlier run in this folder would be merged with ours
    for (const char* f : {"trained.safetensors", "adapter_model.safetensors", "adapter_config.json"})
      fs::remove(path_join(c.out_dir, f));

  const TrainOps t{Ops{&kernels_best(), &pool, c.compute}, &grad_kernels_best(c.compute)};
  jobs::Progress bar("train", total - prog.step, c.quiet);
  std::ofstream log(log_path, std::ios::app);
  const auto t0 = std::chrono::steady_clock::now();
  int64_t cached_epoch = -1;
  std::vector<size_t> order;
  while (prog.step < total) {
    const auto s0 = std::chrono::steady_clock::now();
    ps.zero_grad();
    double loss = 0, aux = 0;
    int64_t tokens = 0;
    for (int a = 0; a < c.grad_accum; a++) {
      const int64_t epoch = prog.consumed / n;
      if (epoch != cached_epoch) order = epoch_order(size_t(n), c.seed, epoch), cached_epoch = epoch;
      const SftLineRef& ref = index.lines[order[size_t(prog.consumed % n)]];
      const SftSample s = reader.read_at(ref);
      const LossParts l = model.step(s, t, 1.f / float(c.grad_accum), c.recompute);
      loss += l.loss / c.grad_accum;
      aux += l.aux_loss / c.grad_accum;
      tokens += int64_t(s.input_ids.size());
      prog.consumed++;
    }
    const double norm = ps.grad_norm();
    DSVL2_REQUIRE(std::isfinite(norm) && std::isfinite(loss),
                  "train: the loss or gradient is not finite at step %lld (loss %g, grad norm %g)",
                  (long long)prog.step + 1, loss, norm);
    if (c.clip > 0 && norm > c.clip) {
      const float f = float(c.clip / (norm + 1e-6));
      ps.for_each_trainable([&](Param& p) {
        float* g = p.grad.f32();
        const int64_t count = p.numel();
        for (int64_t i = 0; i < count; i++) g[i] *= f;
      });
    }
    const double lr = sched.at(prog.step);
    opt.step(ps, lr, &pool);
    prog.step++;
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
    if (rep.steps == 0) rep.first_loss = loss;
    rep.last_loss = loss;
    rep.steps++;
    rep.samples += c.grad_accum;
    const nlohmann::json line = {{"step", prog.step}, {"epoch", double(prog.consumed) / double(n)},
                                 {"loss", loss},      {"aux_loss", aux},
                                 {"grad_norm", norm}, {"lr", lr},
                                 {"tokens_per_s", double(tokens) / dt}, {"samples_per_s", c.grad_accum / dt}};
    log << line.dump() << "\n" << std::flush;
    bar.advance();
    if ((c.save_every > 0 && prog.step % c.save_every == 0) || prog.step == total)
      save_train_checkpoint(c.out_dir, ps, opt, prog);
  }
  bar.finish();
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rep.samples_per_s = rep.seconds > 0 ? double(rep.samples) / rep.seconds : 0;

  // Final outputs: the adapter (PEFT) and every other trained tensor (official names).
  if (c.lora.rank > 0) save_lora_adapter(ps, c.lora, c.model_dir, c.out_dir);
  std::vector<std::pair<std::string, const Tensor*>> trained;
  std::map<std::string, const Tensor*> replace;
  for (const Param& p : ps.all())
    if (p.trainable && !starts(p.name, "base_model.")) {
      trained.push_back({p.name, &p.value});
      replace[p.name] = &p.value;
    }
  if (!trained.empty()) save_safetensors(path_join(c.out_dir, "trained.safetensors"), trained);
  if (!c.export_dir.empty()) write_checkpoint_folder(ckpt, c.model_dir, replace, c.export_dir);
  return rep;
}

}  // namespace dsvl2
