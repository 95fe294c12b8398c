#include "train/lora.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/file.h"
#include "core/rng.h"
#include "io/safetensors.h"

namespace dsvl2 {

namespace {

const std::set<std::string>& short_names() {
  static const std::set<std::string> s{"q", "k", "v", "o", "experts", "shared", "dense"};
  return s;
}

std::string module_of(const Param& w) { return w.name.substr(0, w.name.size() - std::string(".weight").size()); }
std::string leaf(const std::string& module) { return module.substr(module.rfind('.') + 1); }

// Whether a decoder Linear (module name, and the block it sits in) is targeted.
bool targeted(const std::vector<std::string>& targets, const std::string& module, const char* block) {
  const std::string l = leaf(module);
  for (const std::string& t : targets) {
    if (!short_names().count(t)) {
      if (l == t) return true;
      continue;
    }
    if (std::string(block) != "attn") {
      if (t == block) return true;
      continue;
    }
    if ((t == "q" && (l == "q_proj" || l == "q_a_proj" || l == "q_b_proj")) ||
        (t == "k" && (l == "k_proj" || l == "kv_a_proj_with_mqa" || l == "kv_b_proj")) ||
        (t == "v" && (l == "v_proj" || l == "kv_a_proj_with_mqa" || l == "kv_b_proj")) || (t == "o" && l == "o_proj"))
      return true;
  }
  return false;
}

void adapt(LinearRef& l, ParamStore& ps, const LoraConfig& cfg, uint64_t seed) {
  const std::string m = "base_model.model." + module_of(*l.w);
  const int64_t in = l.cols(), out = l.rows(), r = cfg.rank;
  Tensor a = Tensor::f32({r, in}), b = Tensor::f32({out, r});
  Rng rng(seed, hash_string(m));
  const double bound = 1.0 / std::sqrt(double(in));  // kaiming_uniform_(a=sqrt(5))
  for (int64_t i = 0; i < a.numel(); i++) a.f32()[i] = float(rng.uniform(-bound, bound));
  l.lora.a = &ps.add(m + ".lora_A.weight", std::move(a));
  l.lora.b = &ps.add(m + ".lora_B.weight", std::move(b));
  l.lora.scale = cfg.scale();
}

}  // namespace

std::vector<std::string> parse_lora_targets(const std::string& list) {
  std::vector<std::string> out;
  size_t p = 0;
  while (p <= list.size()) {
    const size_t c = std::min(list.find(',', p), list.size());
    std::string t = list.substr(p, c - p);
    if (!t.empty()) {
      DSVL2_REQUIRE(short_names().count(t) || t.ends_with("_proj") || t == "kv_a_proj_with_mqa",
                    "LoRA target \"%s\" is not one of q, k, v, o, experts, shared, dense or a *_proj module",
                    t.c_str());
      out.push_back(t);
    }
    p = c + 1;
  }
  DSVL2_REQUIRE(!out.empty(), "no LoRA targets given");
  return out;
}

int attach_lora(DecoderTrain& dec, ParamStore& ps, const LoraConfig& cfg, uint64_t seed) {
  DSVL2_REQUIRE(cfg.rank >= 1 && cfg.rank <= 4096 && cfg.alpha > 0, "LoRA rank %d / alpha %g out of range", cfg.rank,
                double(cfg.alpha));
  int n = 0;
  auto visit = [&](LinearRef& l, const char* block) {
    if (l.lora.a || !targeted(cfg.targets, module_of(*l.w), block)) return;
    adapt(l, ps, cfg, seed);
    n++;
  };
  for (DecoderTrain::Layer& L : dec.layers()) {
    L.attn.for_each_linear([&](LinearRef& l) { visit(l, "attn"); });
    auto mlp = [&](MlpTrain& m, const char* block) {
      for (LinearRef* l : {&m.gate, &m.up, &m.down}) visit(*l, block);
    };
    if (L.dense) mlp(*L.dense, "dense");
    if (L.moe) {
      for (MlpTrain& e : L.moe->experts()) mlp(e, "experts");
      if (MlpTrain* s = L.moe->shared()) mlp(*s, "shared");
    }
  }
  DSVL2_REQUIRE(n > 0, "no Linear of the language model matches the LoRA targets");
  return n;
}

void save_lora_adapter(const ParamStore& ps, const LoraConfig& cfg, const std::string& base_model,
                       const std::string& dir) {
  std::vector<std::pair<std::string, const Tensor*>> tensors;
  std::set<std::string> modules;
  for (const Param& p : ps.all()) {
    if (p.name.rfind("base_model.model.", 0) != 0) continue;
    tensors.push_back({p.name, &p.value});
    const std::string m = p.name.substr(0, p.name.rfind(".lora_"));
    modules.insert(leaf(m));
  }
  DSVL2_REQUIRE(!tensors.empty(), "no LoRA adapter to save");
  save_safetensors(path_join(dir, "adapter_model.safetensors"), tensors);
  nlohmann::json j = {{"peft_type", "LORA"},
                      {"task_type", "CAUSAL_LM"},
                      {"base_model_name_or_path", base_model},
                      {"r", cfg.rank},
                      {"lora_alpha", cfg.alpha},
                      {"lora_dropout", 0.0},
                      {"bias", "none"},
                      {"fan_in_fan_out", false},
                      {"init_lora_weights", true},
                      {"use_rslora", false},
                      {"inference_mode", true},
                      {"modules_to_save", nullptr},
                      {"target_modules", std::vector<std::string>(modules.begin(), modules.end())}};
  write_file(path_join(dir, "adapter_config.json"), j.dump(2) + "\n");
}

LoraConfig read_lora_config(const std::string& dir) {
  const std::string path = path_join(dir, "adapter_config.json");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    DSVL2_FAIL("%s: not JSON (%s)", path.c_str(), e.what());
  }
  DSVL2_REQUIRE(j.is_object() && j.value("peft_type", "") == "LORA" && j.contains("r") && j["r"].is_number_integer() &&
                    j.contains("lora_alpha") && j["lora_alpha"].is_number(),
                "%s: not a PEFT LoRA config (peft_type LORA, integer r, lora_alpha)", path.c_str());
  DSVL2_REQUIRE(!j.value("use_rslora", false) && !j.value("fan_in_fan_out", false),
                "%s: use_rslora / fan_in_fan_out adapters are not supported", path.c_str());
  LoraConfig c;
  c.rank = j["r"].get<int>();
  c.alpha = j["lora_alpha"].get<float>();
  DSVL2_REQUIRE(c.rank >= 1 && c.rank <= 4096 && c.alpha > 0, "%s: r %d / lora_alpha %g out of range", path.c_str(),
                c.rank, double(c.alpha));
  c.targets.clear();
  if (j.contains("target_modules") && j["target_modules"].is_array())
    for (const auto& t : j["target_modules"])
      if (t.is_string()) c.targets.push_back(t.get<std::string>());
  return c;
}

}  // namespace dsvl2
