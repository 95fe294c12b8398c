// `dsvl2 trace`: runs one prompt through every stage and writes each stage's
// output to a safetensors file, named as in the golden data (acceptance checks
// compare them with the official implementation's).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "command.h"
#include "id_list.h"
#include "core/error.h"
#include "core/file.h"
#include "io/safetensors.h"
#include "model/sequence.h"
#include "model/vl_model.h"
#include "sample/sampler.h"

namespace dsvl2::cli {
namespace {

struct TraceOptions {
  std::string model, ids_path, out, compute = "f32", crop = "auto";
  std::vector<std::string> images;
  int steps = 0, threads = 0, image_token_id = -1;
};

Tensor i64_tensor(const std::vector<int32_t>& v) {
  Tensor t(DType::kI64, {int64_t(v.size())});
  for (size_t i = 0; i < v.size(); i++) t.as<int64_t>()[i] = v[i];
  return t;
}

int run_trace(const TraceOptions& o) {
  Compute compute;
  if (!parse_compute(o.compute, &compute)) DSVL2_FAIL("--compute must be f32 or bf16, got \"%s\"", o.compute.c_str());
  CropMode crop = o.crop == "on" ? CropMode::kOn : o.crop == "off" ? CropMode::kOff : CropMode::kAuto;
  if (o.crop != "on" && o.crop != "off" && o.crop != "auto") DSVL2_FAIL("--crop must be auto, on or off");
  if (o.steps < 0 || o.steps > 100000) DSVL2_FAIL("--steps must be in [0, 100000]");
  std::vector<int32_t> ids = read_id_list(o.ids_path);
  if (ids.empty()) DSVL2_FAIL("%s: empty prompt", o.ids_path.c_str());

  VisionLanguageModel model(o.model);
  int image_token_id = o.image_token_id >= 0 ? o.image_token_id : model.image_token_id();
  if (image_token_id < 0 && !o.images.empty())
    DSVL2_FAIL("%s has no tokenizer to name the <image> token: pass --image-token-id", o.model.c_str());

  ThreadPool pool(o.threads);
  Ops ops{&kernels_best(), &pool, compute};

  std::vector<Image> images;
  for (const auto& p : o.images) images.push_back(load_image(p));
  PreprocessResult pre;
  if (!images.empty()) pre = preprocess_images(images, model.processor(), crop);

  VisionTrace trace;
  Tensor embeds = model.embed_prompt(ids, image_token_id, images.empty() ? nullptr : &pre, ops, &trace);
  const int T = int(ids.size());
  const LanguageModel& lm = model.language();
  KVCache cache(model.config().language, T + o.steps, kv_dtype_for(ops.compute));
  // Full-prompt logits through the cache; the greedy steps continue from it,
  // so generated_step_logits[0] == logits[-1] as in the official KV-cache path.
  Tensor logits = lm.forward(embeds.f32(), T, cache, ops, LogitsMode::kAll);
  const int64_t vocab = logits.dim(1);
  // Greedy steps through the shipped generation step (no tokenizer: no stops).
  GenerateRequest req;
  req.max_new_tokens = o.steps;
  std::vector<float> steps;
  req.on_logits = [&](const float* l, int v) { steps.insert(steps.end(), l, l + v); };
  Sequence seq(nullptr, cache, req);
  seq.start_from_logits(logits.f32() + int64_t(T - 1) * vocab, int(vocab));
  run_to_end(lm, seq, ops);
  const std::vector<int32_t>& generated = seq.result().ids;
  DSVL2_CHECK(int(generated.size()) == o.steps, "trace: %zu of %d steps", generated.size(), o.steps);
  Tensor step_logits = Tensor::f32({int64_t(o.steps), vocab});
  std::copy(steps.begin(), steps.end(), step_logits.f32());

  std::vector<std::pair<std::string, const Tensor*>> out;
  Tensor input_ids = i64_tensor(ids);
  out.emplace_back("input_ids", &input_ids);
  if (!images.empty()) {
    out.emplace_back("pixel_values", &pre.pixel_values);
    out.emplace_back("images_spatial_crop", &pre.images_spatial_crop);
    out.emplace_back("num_image_tokens", &pre.num_image_tokens);
    out.emplace_back("vision_output", &trace.vision_output);
    out.emplace_back("projector_output", &trace.projector_output);
  }
  out.emplace_back("inputs_embeds", &embeds);
  out.emplace_back("logits", &logits);
  Tensor gen = i64_tensor(generated);
  if (o.steps > 0) {
    out.emplace_back("generated_ids", &gen);
    out.emplace_back("generated_step_logits", &step_logits);
  }
  save_safetensors(o.out, out);
  std::fprintf(stderr, "trace: %d tokens, %zu image(s), %s compute, %s kernels -> %s\n", T, images.size(),
               compute_name(compute), isa_name(ops.k->isa), o.out.c_str());
  return 0;
}

Command reg("trace", "Run one prompt and write every stage's output (golden-data names) to safetensors",
            [](CLI::App& app) {
              auto o = std::make_shared<TraceOptions>();
              app.add_option("-m,--model", o->model, "Checkpoint folder")->required();
              app.add_option("--image", o->images, "Image file (repeat for several, in prompt order)");
              app.add_option("--input-ids", o->ids_path, "JSON array of token ids, image-token runs expanded")->required();
              app.add_option("--image-token-id", o->image_token_id, "Id at image positions (default: the tokenizer's <image>)");
              app.add_option("--steps", o->steps, "Greedy tokens to generate with the KV cache (default 0)");
              app.add_option("--compute", o->compute, "Numeric mode: f32 (reference) or bf16 (fast)");
              app.add_option("--crop", o->crop, "Local tiles: auto (official rule), on or off");
              app.add_option("-t,--threads", o->threads, "Threads (default: all cores)");
              app.add_option("-o,--out", o->out, "Output .safetensors")->required();
              return std::function<int()>([o] { return run_trace(*o); });
            });

}  // namespace
}  // namespace dsvl2::cli
