// `dsvl2 train`: fine-tuning (stage-1 alignment, LoRA SFT) and the gradient
// check contract (--grad-check), see docs/train.md.
#include <cstdio>
#include <memory>

#include "command.h"
#include "id_list.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "train/grad_check.h"
#include "train/trainer.h"

namespace dsvl2::cli {
namespace {

struct TrainOptions {
  std::string model, grad_check, ids_file, labels_file, compute = "f32";
  std::vector<std::string> images;
  int image_token_id = -1, threads = 0;
  // Training.
  std::string data, out, stage = "sft", lora, lora_targets = "q,k,v,o", on_bad = "stop";
  TrainerConfig tc;
};

// "RANK" or "RANK,ALPHA" (alpha defaults to 2 * rank, ms-swift's default ratio).
void parse_lora(const std::string& s, LoraConfig* c) {
  const size_t comma = s.find(',');
  try {
    size_t used = 0;
    c->rank = std::stoi(s.substr(0, comma), &used);
    DSVL2_REQUIRE(used == (comma == std::string::npos ? s.size() : comma) && c->rank >= 1, "bad rank");
    c->alpha = comma == std::string::npos ? float(2 * c->rank) : std::stof(s.substr(comma + 1));
  } catch (const std::exception&) {
    DSVL2_FAIL("--lora \"%s\": expected RANK or RANK,ALPHA", s.c_str());
  }
}

int run_train(TrainOptions& o) {
  DSVL2_REQUIRE(!o.data.empty() && !o.out.empty(), "train: --data and --out are required (or use --grad-check)");
  TrainerConfig& c = o.tc;
  c.model_dir = o.model;
  c.data = o.data;
  c.out_dir = o.out;
  c.stage = o.stage == "align" ? TrainerConfig::Stage::kAlign : TrainerConfig::Stage::kSft;
  c.lora.rank = 0;
  if (!o.lora.empty()) {
    DSVL2_REQUIRE(c.stage == TrainerConfig::Stage::kSft, "train: --lora belongs to --stage sft");
    parse_lora(o.lora, &c.lora);
    c.lora.targets = parse_lora_targets(o.lora_targets);
  }
  c.on_bad_line = o.on_bad == "skip" ? BadLinePolicy::kSkip : BadLinePolicy::kStop;
  parse_compute(o.compute, &c.compute);
  ThreadPool pool(o.threads);
  const TrainerReport r = run_training(c, pool);
  std::printf("%s %lld step(s), %lld sample(s) in %.1f s (%.3g samples/s); loss %.4g -> %.4g; %lld trainable "
              "values; %lld bad line(s); outputs in %s\n",
              r.resumed ? "resumed:" : "trained:", (long long)r.steps, (long long)r.samples, r.seconds,
              r.samples_per_s, r.first_loss, r.last_loss, (long long)r.trainable, (long long)r.bad_lines,
              c.out_dir.c_str());
  return 0;
}

Command reg("train", "Fine-tune DeepSeek-VL2 (alignment, LoRA) or check its gradients", [](CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  app.add_option("-m,--model", o->model, "Checkpoint folder")->required();
  app.add_option("--grad-check", o->grad_check,
                 "Write loss, aux_loss and grad.NAME of one sample to this .safetensors (no update)");
  app.add_option("--image", o->images, "Image of the sample (repeat, in prompt order)");
  app.add_option("--input-ids", o->ids_file, "JSON array of the sample's token ids");
  app.add_option("--labels", o->labels_file, "JSON array of labels (-100: not supervised)");
  app.add_option("--image-token-id", o->image_token_id, "Id of <image> (default: the tokenizer's, else inferred)");
  app.add_option("--compute", o->compute, "f32 (reference) or bf16")->check(CLI::IsMember({"f32", "bf16"}));
  app.add_option("-t,--threads", o->threads, "Threads (default: all cores)");
  app.add_option("--data", o->data, "Training JSONL (synth or ms-swift form, docs/train-data.md)");
  app.add_option("--out", o->out, "Output folder (adapter, trained tensors, log, checkpoint)");
  app.add_option("--stage", o->stage, "align (projector; LLM frozen) or sft")->check(CLI::IsMember({"align", "sft"}));
  app.add_option("--lora", o->lora, "LoRA RANK[,ALPHA] on the language model (sft)");
  app.add_option("--lora-targets", o->lora_targets, "q,k,v,o,experts,shared,dense (or *_proj names)");
  app.add_flag("--train-vision", o->tc.train_vision, "Also train the SigLIP tower");
  app.add_flag("--train-projector", o->tc.train_projector, "Also train the projector in sft");
  app.add_option("--epochs", o->tc.epochs, "Passes over the data")->check(CLI::Range(1, 1000000));
  app.add_option("--max-steps", o->tc.max_steps, "Stop after this many optimizer steps");
  app.add_option("--grad-accum", o->tc.grad_accum, "Samples per optimizer step")->check(CLI::Range(1, 1 << 20));
  app.add_option("--lr", o->tc.lr, "Peak learning rate");
  app.add_option("--min-lr", o->tc.min_lr, "Learning rate at the end of the cosine decay");
  app.add_option("--warmup", o->tc.warmup, "Linear warm-up steps");
  app.add_option("--weight-decay", o->tc.weight_decay, "AdamW weight decay");
  app.add_option("--clip", o->tc.clip, "Clip the global gradient norm (0: off)");
  app.add_option("--seed", o->tc.seed, "Seed of the data order and the LoRA initialisation");
  app.add_option("--save-every", o->tc.save_every, "Checkpoint every N steps (and at the end)");
  app.add_flag("--resume", o->tc.resume, "Continue from the output folder's checkpoint");
  app.add_option("--max-length", o->tc.max_length, "Longest sample in tokens (default: the context length)");
  app.add_option("--on-bad-line", o->on_bad, "stop (default) or skip bad JSONL lines, counted")
      ->check(CLI::IsMember({"stop", "skip"}));
  app.add_option("--export", o->tc.export_dir, "Also write a complete checkpoint folder (no LoRA)");
  app.add_flag("--no-recompute", [o](int64_t) { o->tc.recompute = false; }, "Keep every activation (more memory)");
  app.add_flag("-q,--quiet", o->tc.quiet, "No progress bar");
  return std::function<int()>([o] {
    if (o->grad_check.empty()) return run_train(*o);
    DSVL2_REQUIRE(!o->ids_file.empty() && !o->labels_file.empty(), "train --grad-check needs --input-ids and --labels");
    GradCheckInputs in;
    in.model_dir = o->model;
    in.images = o->images;
    in.input_ids = read_id_list(o->ids_file);
    in.labels = read_id_list(o->labels_file, -100);
    in.image_token_id = o->image_token_id;
    parse_compute(o->compute, &in.compute);
    ThreadPool pool(o->threads);
    const LossParts l = run_grad_check(in, o->grad_check, pool);
    std::printf("loss %.7g  aux_loss %.7g  supervised %lld  wrote %s\n", l.loss, l.aux_loss, (long long)l.supervised,
                o->grad_check.c_str());
    return 0;
  });
});

}  // namespace
}  // namespace dsvl2::cli
