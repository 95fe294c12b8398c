#include "train/grad_check.h"

#include <map>

#include "core/error.h"
#include "core/file.h"
#include "image/image.h"
#include "image/preprocess.h"
#include "io/checkpoint.h"
#include "io/model_config.h"
#include "io/tensor_registry.h"
#include "io/safetensors.h"
#include "text/tokenizer.h"
#include "train/vl_train.h"

namespace dsvl2 {

int infer_image_token_id(const std::string& dir, const std::string& image_token, const std::vector<int32_t>& ids,
                         int64_t n) {
  if (file_exists(path_join(dir, "tokenizer.json"))) {
    const Tokenizer tok = Tokenizer::load(dir);
    if (auto id = tok.token_to_id(image_token)) return *id;
  }
  if (n == 0) return -1;
  std::map<int32_t, int64_t> count;
  for (int32_t id : ids) count[id]++;
  int found = -1, matches = 0;
  for (const auto& [id, c] : count)
    if (c == n) found = id, matches++;
  DSVL2_REQUIRE(matches == 1,
                "the images take %lld positions but %s of the input ids occurs that often; name the image token id",
                (long long)n, matches == 0 ? "none" : "more than one");
  return found;
}

LossParts run_grad_check(const GradCheckInputs& in, const std::string& out, ThreadPool& pool) {
  const VLConfig cfg = load_vl_config(in.model_dir);
  const ProcessorConfig proc = processor_config_for(in.model_dir, cfg);
  DSVL2_REQUIRE(!in.input_ids.empty() && in.input_ids.size() == in.labels.size(),
                "grad check: %zu input ids and %zu labels (they must be equal and non-zero)", in.input_ids.size(),
                in.labels.size());
  SftSample s;
  s.input_ids = in.input_ids;
  s.labels = in.labels;
  int64_t n_image_tokens = 0;
  if (!in.images.empty()) {
    std::vector<Image> imgs;
    for (const std::string& p : in.images) imgs.push_back(load_image(p));
    PreprocessResult pre = preprocess_images(imgs, proc, CropMode::kAuto);
    const int64_t n_images = pre.num_image_tokens.numel();
    for (int64_t i = 0; i < n_images; i++) n_image_tokens += pre.num_image_tokens.as<int64_t>()[i];
    s.images = std::move(pre);
  }
  const int image_id = in.image_token_id >= 0 ? in.image_token_id
                                              : infer_image_token_id(in.model_dir, proc.image_token, s.input_ids,
                                                                     n_image_tokens);
  s.image_mask.assign(s.input_ids.size(), 0);
  int64_t slots = 0;
  for (size_t i = 0; i < s.input_ids.size(); i++) slots += (s.image_mask[i] = s.input_ids[i] == image_id);
  DSVL2_REQUIRE(slots == n_image_tokens, "grad check: the input ids hold %lld image tokens (id %d), the images need %lld",
                (long long)slots, image_id, (long long)n_image_tokens);

  Checkpoint ckpt(in.model_dir);
  validate_checkpoint(ckpt, cfg);  // every shape as the config says, before any kernel reads them
  ParamStore ps(ckpt, is_unused_parameter);
  // Everything trains but the noaux_tc correction bias, which no loss reaches.
  ps.set_trainable([](const std::string& n) { return n.find("e_score_correction_bias") == std::string::npos; });
  VlTrain model(cfg, ps);
  const TrainOps t{Ops{&kernels_best(), &pool, in.compute}, &grad_kernels_best(in.compute)};
  const LossParts parts = model.step(s, t, 1.f, false);

  Tensor loss = Tensor::f32({1}), aux = Tensor::f32({1});
  loss.f32()[0] = float(parts.loss);
  aux.f32()[0] = float(parts.aux_loss);
  std::vector<std::pair<std::string, const Tensor*>> tensors{{"loss", &loss}, {"aux_loss", &aux}};
  for (const Param& p : ps.all())
    if (p.trainable) tensors.push_back({"grad." + p.name, &p.grad});
  save_safetensors(out, tensors);
  return parts;
}

}  // namespace dsvl2
