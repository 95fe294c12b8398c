#include "model/vl_model.h"

#include "core/error.h"
#include "core/file.h"
#include "io/gguf_dsvl2.h"
#include "io/tensor_registry.h"

namespace dsvl2 {

VisionLanguageModel::VisionLanguageModel(const std::string& path) : dir_(path) {
  if (file_exists(path)) {
    load_gguf(path);
    return;
  }
  const std::string& dir = path;
  if (!is_directory(dir)) DSVL2_FAIL("%s: not a checkpoint folder or .gguf file", dir.c_str());
  cfg_ = load_vl_config(dir);
  // processor_config.json is optional for our own folders.
  proc_ = processor_config_for(dir, cfg_);
  ckpt_ = std::make_unique<Checkpoint>(dir);
  build(dir);
}

// A .gguf from `dsvl2 quantize`: config.json and processor_config.json travel
// inside as metadata; the tokenizer is looked for beside the file.
void VisionLanguageModel::load_gguf(const std::string& file) {
  ckpt_ = std::make_unique<Checkpoint>(file);
  if (!ckpt_->gguf()) DSVL2_FAIL("%s: not a checkpoint folder or .gguf file", file.c_str());
  cfg_ = gguf_vl_config(ckpt_->gguf()->metadata());
  proc_ = gguf_processor_config(ckpt_->gguf()->metadata());
  size_t slash = file.find_last_of('/');
  build(slash == std::string::npos ? "." : file.substr(0, slash));
}

void VisionLanguageModel::build(const std::string& tokenizer_dir) {
  validate_checkpoint(*ckpt_, cfg_);
  vision_ = std::make_unique<VisionModel>(VisionModel::load(*ckpt_, cfg_));
  lm_ = std::make_unique<LanguageModel>(cfg_.language, checkpoint_source(*ckpt_));
  const std::string& dir = tokenizer_dir;
  if (file_exists(path_join(dir, "tokenizer.json"))) {
    tok_.emplace(Tokenizer::load(dir));
    if (auto id = tok_->token_to_id(proc_.image_token)) image_token_id_ = *id;
    if (tok_->vocab_size() > cfg_.language.vocab_size)
      DSVL2_FAIL("%s: tokenizer has %d ids but the model's vocab_size is %d", dir.c_str(), tok_->vocab_size(),
                 cfg_.language.vocab_size);
  }
}

VisionLanguageModel::~VisionLanguageModel() = default;

size_t VisionLanguageModel::make_ready(const Ops& ops, bool repack) {
  const size_t packed = repack ? prepare(ops) : 0;
  if (packed == 0) populate();
  return packed;
}

bool VisionLanguageModel::populate() const {
  // Weights that fit in 90% of free memory are mapped now: a fresh process
  // otherwise faults them in 4 KiB at a time during its first prompt
  // (measured on Tiny: a 14-token first prefill 6.6 s, the next 0.9 s).
  const bool done = ckpt_->populate(memory_available_bytes() / 10 * 9);
  const Weight& emb = lm_->embedding_table();  // read a row per token: on demand
  uint64_t bytes = 0;  // block-quantized tables (a GGUF's Q8_0 embedding) count whole blocks
  if (dtype_bytes(emb.dtype, emb.rows * emb.cols, &bytes)) ckpt_->release(emb.data, size_t(bytes));
  return done;
}

size_t VisionLanguageModel::prepare(const Ops& ops) {
  // When the packed copy and the file's page cache cannot both stay in
  // memory, drop the cache of each packed range at once: otherwise every new
  // packed page waits for the kernel to reclaim a cached one (measured on a
  // 16.8 GB Base Q4_0 file with 24 GB of memory: 89 s to load, vs. seconds).
  const Checkpoint& ck = *ckpt_;
  const bool drop_cache = ck.file_bytes() * 2 > memory_available_bytes();
  auto release = [&ck, drop_cache](const void* p, size_t n) { ck.release(p, n, drop_cache); };
  return vision_->prepare(ops, release) + lm_->prepare(ops, release);
}

const Tokenizer& VisionLanguageModel::tokenizer() const {
  if (!tok_) DSVL2_FAIL("%s: no tokenizer.json in the checkpoint folder", dir_.c_str());
  return *tok_;
}

Tensor VisionLanguageModel::embed_prompt(const std::vector<int32_t>& ids, int image_token_id,
                                         const PreprocessResult* images, const Ops& ops, VisionTrace* trace) const {
  if (ids.empty()) DSVL2_FAIL("empty prompt: no token ids");
  Tensor embeds = lm_->embed(std::vector<int>(ids.begin(), ids.end()));
  int64_t n_image_positions = 0;
  for (int32_t id : ids) n_image_positions += id == image_token_id;
  if (n_image_positions == 0) {
    if (images && images->num_image_tokens.numel() > 0)
      DSVL2_FAIL("the prompt has %lld image(s) but no image token (id %d) positions",
                 (long long)images->num_image_tokens.numel(), image_token_id);
    return embeds;
  }
  if (!images || images->num_image_tokens.numel() == 0)
    DSVL2_FAIL("the prompt has %lld image-token positions (id %d) but no images were given",
               (long long)n_image_positions, image_token_id);
  int64_t expected = 0;
  for (int64_t i = 0; i < images->num_image_tokens.numel(); i++) expected += images->num_image_tokens.as<int64_t>()[i];
  if (expected != n_image_positions)
    DSVL2_FAIL("the prompt has %lld image-token positions but the %lld image(s) need %lld", (long long)n_image_positions,
               (long long)images->num_image_tokens.numel(), (long long)expected);
  Tensor image_tokens = vision_->embed_images(images->pixel_values, images->images_spatial_crop, ops, trace);
  std::vector<int64_t> ids64(ids.begin(), ids.end());
  splice_image_embeddings(embeds, ids64, image_token_id, image_tokens);
  return embeds;
}

}  // namespace dsvl2
