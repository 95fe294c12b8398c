// `dsvl2 train`: fine-tuning (stage-1 alignment, LoRA SFT) and the gradient
// check contract (--grad-check), see docs/train.md.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "command.h"
#include "core/error.h"
#include "core/file.h"
#include "core/thread_pool.h"
#include "train/grad_check.h"

namespace dsvl2::cli {
namespace {

struct TrainOptions {
  std::string model, grad_check, ids_file, labels_file, compute = "f32";
  std::vector<std::string> images;
  int image_token_id = -1, threads = 0;
};

// A JSON array of integers, or an object holding exactly one such array.
std::vector<int32_t> read_id_list(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    DSVL2_FAIL("%s: not JSON (%s)", path.c_str(), e.what());
  }
  if (j.is_object() && j.size() == 1) j = j.begin().value();
  DSVL2_REQUIRE(j.is_array(), "%s: expected a JSON array of token ids", path.c_str());
  std::vector<int32_t> ids;
  for (const auto& v : j) {
    DSVL2_REQUIRE(v.is_number_integer() && v.get<int64_t>() >= -100 && v.get<int64_t>() < (int64_t(1) << 31),
                  "%s: element %zu is not a token id", path.c_str(), ids.size());
    ids.push_back(int32_t(v.get<int64_t>()));
  }
  return ids;
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
  return std::function<int()>([o] {
    DSVL2_REQUIRE(!o->grad_check.empty(), "train: only --grad-check is available in this build");
    DSVL2_REQUIRE(!o->ids_file.empty() && !o->labels_file.empty(), "train --grad-check needs --input-ids and --labels");
    GradCheckInputs in;
    in.model_dir = o->model;
    in.images = o->images;
    in.input_ids = read_id_list(o->ids_file);
    in.labels = read_id_list(o->labels_file);
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
