// DeepSeek-VL2 from a checkpoint folder: config, processor config, weights,
// vision side, language model and (when the folder has one) the tokenizer.
// Immutable after loading; per-conversation state (KV cache) lives elsewhere.
//
//   VisionLanguageModel m("deepseek-vl2-tiny");
//   PreprocessResult img = preprocess_images({load_image("a.jpg")}, m.processor(), CropMode::kAuto);
//   Tensor embeds = m.embed_prompt(ids, m.image_token_id(), &img, ops);
//   KVCache cache(m.config().language);
//   Tensor logits = m.language().forward(embeds.f32(), T, cache, ops, LogitsMode::kLast);
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "image/preprocess.h"
#include "io/checkpoint.h"
#include "io/model_config.h"
#include "llm/decoder.h"
#include "text/tokenizer.h"
#include "vision/vision_model.h"

namespace dsvl2 {

class VisionLanguageModel {
 public:
  // `path`: a checkpoint folder (config.json, safetensors, optional
  // processor_config.json and tokenizer.json), or a .gguf written by
  // `dsvl2 quantize` (tokenizer.json beside it). Throws Error naming what is wrong.
  explicit VisionLanguageModel(const std::string& path);
  ~VisionLanguageModel();

  const std::string& dir() const { return dir_; }
  const VLConfig& config() const { return cfg_; }
  const ProcessorConfig& processor() const { return proc_; }
  const VisionModel& vision() const { return *vision_; }
  const LanguageModel& language() const { return *lm_; }
  bool has_tokenizer() const { return tok_.has_value(); }
  const Tokenizer& tokenizer() const;  // Error when the folder has none
  // The <image> token's id in the tokenizer; -1 without a tokenizer.
  int image_token_id() const { return image_token_id_; }

  // inputs_embeds [T, hidden] for prompt ids: text embeddings, with the
  // positions holding `image_token_id` replaced by the image tokens of `images`
  // (prepare_inputs_embeds). `images` may be null when ids hold no image token.
  Tensor embed_prompt(const std::vector<int32_t>& ids, int image_token_id, const PreprocessResult* images,
                      const Ops& ops, VisionTrace* trace = nullptr) const;

  // Once after loading, before the model is shared: repacks the vision
  // tower's and language model's matrices for ops (LanguageModel::prepare,
  // VisionModel::prepare) and drops the mapped
  // checkpoint pages they replace. Worth it when the model will run more than
  // a few tokens with these ops (a session, a server, a benchmark); results
  // are unchanged and other ops keep working. Returns the packed bytes.
  size_t prepare(const Ops& ops);
  // For running from the mapped checkpoint (no prepare): maps the weights'
  // pages now when they fit in memory, so the first prompt does not fault
  // them in one by one. prepare() needs no populate: packing reads each
  // matrix once and drops its pages. Returns whether it populated.
  bool populate() const;
  // What every command does after loading: prepare() when `repack` (and the
  // kernels pack anything), else populate(). Returns the packed bytes (0 when
  // the weights run from the mapping).
  size_t make_ready(const Ops& ops, bool repack = true);

 private:
  void load_gguf(const std::string& file);
  void build(const std::string& tokenizer_dir);

  std::string dir_;
  VLConfig cfg_;
  ProcessorConfig proc_;
  std::unique_ptr<Checkpoint> ckpt_;
  std::unique_ptr<VisionModel> vision_;
  std::unique_ptr<LanguageModel> lm_;
  std::optional<Tokenizer> tok_;
  int image_token_id_ = -1;
};

}  // namespace dsvl2
