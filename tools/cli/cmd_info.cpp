// `dsvl2 info`: what this build and CPU support, and a checkpoint's summary.
#include <cstdio>

#include "command.h"
#include "io/checkpoint.h"
#include "io/model_config.h"
#include "ops/ops.h"

namespace dsvl2::cli {
namespace {

Command reg("info", "Show CPU kernel support, or summarise a checkpoint folder (-m)", [](CLI::App& app) {
  auto model = std::make_shared<std::string>();
  app.add_option("-m,--model", *model, "Checkpoint folder");
  return std::function<int()>([model] {
    std::printf("kernels: %s (avx2+fma %s, avx512-bf16 %s)\n", isa_name(kernels_best().isa),
                cpu_has_avx2_fma() ? "yes" : "no", cpu_has_avx512_bf16() ? "yes" : "no");
    if (model->empty()) return 0;
    VLConfig cfg = load_vl_config(*model);
    Checkpoint ckpt(*model);
    const auto& L = cfg.language;
    std::printf("vision: %d layers, width %d, %d heads, MLP %d, patch %d, image %d\n", cfg.vision.layers,
                cfg.vision.width, cfg.vision.heads, cfg.vision.mlp_hidden(), cfg.vision.patch_size, cfg.vision.image_size);
    std::printf("language: %d layers, hidden %d, %s, %d routed experts (top %d, %s/%s), %d shared, vocab %d\n",
                L.num_hidden_layers, L.hidden_size, L.use_mla ? "MLA" : "MHA", L.n_routed_experts,
                L.num_experts_per_tok, L.scoring_func.c_str(), L.topk_method.c_str(), L.n_shared_experts, L.vocab_size);
    std::printf("weights: %zu tensors, %.2f GB\n", ckpt.names().size(), double(ckpt.total_bytes()) / 1e9);
    return 0;
  });
});

}  // namespace
}  // namespace dsvl2::cli
