// config.json (DeepseekVLV2Config) and processor_config.json, with the
// official class defaults for omitted keys and range checks on every integer
// that sizes memory or indexes an array. Field names follow the HF keys.
#pragma once
#include <array>
#include <string>
#include <utility>
#include <vector>

namespace dsvl2 {

struct VisionConfig {  // VisionEncoderConfig
  std::string model_name = "siglip_so400m_patch14_384";
  int layers = 27;
  int width = 1152;
  int heads = 16;
  double mlp_ratio = 3.7362;
  int patch_size = 14;
  int image_size = 384;
  bool ignore_head = true;
  std::string global_pool = "map";
  int mlp_hidden() const { return int(width * mlp_ratio); }  // timm: int(embed_dim * mlp_ratio)
  int grid() const { return image_size / patch_size; }       // 27 tokens a side
  int head_dim() const { return width / heads; }
};

struct ProjectorConfig {  // MlpProjectorConfig
  std::string projector_type = "downsample_mlp_gelu";
  int input_dim = 1152;
  int n_embed = 2048;
  int depth = 2;
  int mlp_ratio = 1;
  int downsample_ratio = 2;
};

struct RopeScaling {
  std::string type;  // "" = none, "yarn"
  double factor = 1.0;
  int original_max_position_embeddings = 4096;
  double beta_fast = 32.0, beta_slow = 1.0;
  double mscale = 1.0, mscale_all_dim = 0.0;
};

struct LanguageConfig {  // DeepseekV2Config
  int vocab_size = 102400;
  int hidden_size = 4096;
  int intermediate_size = 11008;
  int moe_intermediate_size = 1407;
  int num_hidden_layers = 30;
  int num_attention_heads = 32;
  int num_key_value_heads = 32;
  int n_shared_experts = 0;   // None -> 0
  int n_routed_experts = 0;   // None -> 0 (dense model)
  double routed_scaling_factor = 1.0;
  int kv_lora_rank = 512;
  int q_lora_rank = 1536;     // null -> 0 (no q LoRA)
  int qk_rope_head_dim = 64;
  int v_head_dim = 128;
  int qk_nope_head_dim = 128;
  std::string topk_method = "greedy";  // greedy | group_limited_greedy | noaux_tc
  int n_group = 1;
  int topk_group = 1;
  int num_experts_per_tok = 0;
  int moe_layer_freq = 1;
  int first_k_dense_replace = 0;
  bool norm_topk_prob = false;
  // The MoE gate's balance loss in training (DeepseekV2Config's default).
  // seq_aux is not read: with one sequence a forward, the sequence-level and
  // token-level losses are the same number.
  double aux_loss_alpha = 0.001;
  std::string scoring_func = "softmax";  // softmax | sigmoid
  std::string hidden_act = "silu";
  int max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool attention_bias = false;
  bool use_mla = true;
  int bos_token_id = 100000;
  int eos_token_id = 100001;

  int head_dim() const { return hidden_size / num_attention_heads; }  // MHA head size
  int q_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  bool is_moe_layer(int layer) const {
    return n_routed_experts > 0 && layer >= first_k_dense_replace && layer % moe_layer_freq == 0;
  }
};

struct VLConfig {  // DeepseekVLV2Config
  VisionConfig vision;
  ProjectorConfig projector;
  LanguageConfig language;
  std::vector<std::pair<int, int>> candidate_resolutions;  // (height, width) pairs as in the file
  std::string tile_tag = "2D";
  std::string global_view_pos = "head";
};

struct ProcessorConfig {  // processor_config.json
  std::vector<std::pair<int, int>> candidate_resolutions;
  int patch_size = 14;
  int downsample_ratio = 2;
  std::array<float, 3> image_mean{0.5f, 0.5f, 0.5f};
  std::array<float, 3> image_std{0.5f, 0.5f, 0.5f};
  bool normalize = true;
  std::string image_token = "<image>";
  std::string pad_token = "<｜▁pad▁｜>";
  std::string sft_format = "deepseek";
  bool add_special_token = false;
  int image_size = 384;  // tile side: candidate_resolutions[0][0] in the official processor
};

// Parse from JSON text; `what` names the file in errors. Throw Error.
VLConfig parse_vl_config(const std::string& json_text, const std::string& what);
ProcessorConfig parse_processor_config(const std::string& json_text, const std::string& what);
// Read <dir>/config.json and <dir>/processor_config.json.
VLConfig load_vl_config(const std::string& dir);
ProcessorConfig load_processor_config(const std::string& dir);
// dir/processor_config.json when the folder has one, else the processor the
// model config implies (same candidate resolutions, official defaults).
ProcessorConfig processor_config_for(const std::string& dir, const VLConfig& cfg);

}  // namespace dsvl2
