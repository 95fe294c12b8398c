#include "train/checkpoint_out.h"

#include <cstring>
#include <filesystem>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/file.h"
#include "io/safetensors.h"
#include "train/lora.h"

namespace dsvl2 {

namespace fs = std::filesystem;

namespace {
// Adds base + (alpha / r) B A of every adapter module to *merged; returns how many.
int merge_adapter(const Checkpoint& base, const std::string& base_dir, const std::string& adapter_dir,
                  std::map<std::string, Tensor>* merged);
}  // namespace

void write_checkpoint_folder(const Checkpoint& base, const std::string& base_dir,
                             const std::map<std::string, const Tensor*>& replace, const std::string& out_dir) {
  DSVL2_REQUIRE(!base.gguf(), "%s: writing a trained checkpoint needs a safetensors folder, not a .gguf",
                base_dir.c_str());
  std::error_code ec;
  DSVL2_REQUIRE(!fs::exists(out_dir) || !fs::equivalent(base_dir, out_dir, ec),
                "%s: the output folder must differ from the base folder", out_dir.c_str());
  fs::create_directories(out_dir, ec);
  DSVL2_REQUIRE(!ec, "%s: cannot create the folder (%s)", out_dir.c_str(), ec.message().c_str());
  for (const auto& [name, t] : replace) {
    const TensorView* v = base.find(name);
    DSVL2_REQUIRE(v, "%s: the base checkpoint has no tensor %s", base_dir.c_str(), name.c_str());
    DSVL2_REQUIRE(v->dtype == DType::kF32 || v->dtype == DType::kF16 || v->dtype == DType::kBF16,
                  "%s: tensor %s is %s; only float tensors can be replaced", base_dir.c_str(), name.c_str(),
                  dtype_name(v->dtype));
    DSVL2_REQUIRE(t->numel() == v->numel(), "tensor %s: %lld values for %lld", name.c_str(), (long long)t->numel(),
                  (long long)v->numel());
  }
  std::vector<SafetensorsWriter::Entry> entries;
  const std::vector<std::string> names = base.names();
  for (const std::string& n : names) entries.push_back({n, base.find(n)->dtype, base.find(n)->shape});
  const std::string weights = path_join(out_dir, "model.safetensors");
  SafetensorsWriter w(weights, entries, {{"format", "pt"}});
  std::vector<uint8_t> buf;
  for (const std::string& n : names) {
    const TensorView* v = base.find(n);
    auto it = replace.find(n);
    if (it == replace.end()) {
      w.write(v->data, v->nbytes);
      continue;
    }
    const float* src = it->second->f32();
    const int64_t count = v->numel();
    buf.resize(size_t(count) * dtype_size(v->dtype));
    for (int64_t i = 0; i < count; i++) {
      if (v->dtype == DType::kF32)
        std::memcpy(buf.data() + i * 4, &src[i], 4);
      else {
        const uint16_t h = v->dtype == DType::kBF16 ? f32_to_bf16(src[i]) : f32_to_f16(src[i]);
        std::memcpy(buf.data() + i * 2, &h, 2);
      }
    }
    w.write(buf.data(), buf.size());
  }
  w.close();
  // Everything else of the folder travels along (weights and their index excepted).
  for (const auto& e : fs::directory_iterator(base_dir)) {
    if (!e.is_regular_file()) continue;
    const std::string f = e.path().filename().string();
    if (f.ends_with(".safetensors") || f == "model.safetensors.index.json" || f.ends_with(".gguf")) continue;
    fs::copy_file(e.path(), fs::path(out_dir) / f, fs::copy_options::overwrite_existing, ec);
    DSVL2_REQUIRE(!ec, "%s: cannot copy into %s (%s)", e.path().c_str(), out_dir.c_str(), ec.message().c_str());
  }
}

int merge_lora_folder(const std::string& base_dir, const std::string& adapter_dir, const std::string& out_dir) {
  const Checkpoint base(base_dir);
  std::map<std::string, Tensor> merged;
  int n_lora = 0;
  const bool has_adapter = file_exists(path_join(adapter_dir, "adapter_config.json"));
  const std::string trained = path_join(adapter_dir, "trained.safetensors");
  DSVL2_REQUIRE(has_adapter || file_exists(trained),
                "%s: neither adapter_config.json (a LoRA adapter) nor trained.safetensors (trained tensors)",
                adapter_dir.c_str());
  if (file_exists(trained)) {  // tensors trained in full (projector, vision, ...) replace the base's
    const SafetensorsFile f(trained);
    for (const SafetensorsTensor& t : f.tensors()) merged[t.name] = to_f32(t.view);
  }
  if (has_adapter) n_lora = merge_adapter(base, base_dir, adapter_dir, &merged);
  DSVL2_REQUIRE(!merged.empty(), "%s: nothing to merge", adapter_dir.c_str());
  std::map<std::string, const Tensor*> replace;
  for (const auto& [n, t] : merged) replace[n] = &t;
  write_checkpoint_folder(base, base_dir, replace, out_dir);
  return n_lora;
}

namespace {
int merge_adapter(const Checkpoint& base, const std::string& base_dir, const std::string& adapter_dir,
                  std::map<std::string, Tensor>* merged_out) {
  std::map<std::string, Tensor>& merged = *merged_out;
  const LoraConfig cfg = read_lora_config(adapter_dir);
  const SafetensorsFile ad(path_join(adapter_dir, "adapter_model.safetensors"));
  const std::string prefix = "base_model.model.";
  int count = 0;
  for (const SafetensorsTensor& t : ad.tensors()) {
    const std::string& n = t.name;
    const size_t at = n.rfind(".lora_A.weight");
    if (n.rfind(prefix, 0) != 0 || at == std::string::npos || at + 14 != n.size()) {
      DSVL2_REQUIRE(n.find(".lora_B.weight") != std::string::npos && n.rfind(prefix, 0) == 0,
                    "%s: tensor %s is not a LoRA A/B matrix", ad.path().c_str(), n.c_str());
      continue;
    }
    const std::string module = n.substr(prefix.size(), at - prefix.size());
    const SafetensorsTensor* bt = ad.find(prefix + module + ".lora_B.weight");
    DSVL2_REQUIRE(bt, "%s: %s has no lora_B", ad.path().c_str(), module.c_str());
    const TensorView* w = base.find(module + ".weight");
    DSVL2_REQUIRE(w && w->shape.size() == 2, "%s: the base has no matrix %s.weight", base_dir.c_str(), module.c_str());
    const Tensor a = to_f32(t.view), b = to_f32(bt->view);
    const int64_t out = w->shape[0], in = w->shape[1], r = cfg.rank;
    DSVL2_REQUIRE(a.numel() == r * in && b.numel() == out * r,
                  "%s: %s's adapter is not [%lld, %lld] x [%lld, %lld]", ad.path().c_str(), module.c_str(),
                  (long long)out, (long long)r, (long long)r, (long long)in);
    DSVL2_REQUIRE(!merged.count(module + ".weight"), "%s: %s.weight is both trained in full and adapted",
                  adapter_dir.c_str(), module.c_str());
    Tensor m = to_f32(*w);
    const float s = cfg.scale();
    for (int64_t o = 0; o < out; o++)
      for (int64_t k = 0; k < r; k++) {
        const float bk = s * b.f32()[o * r + k];
        if (bk == 0.f) continue;
        const float* ar = a.f32() + k * in;
        float* mr = m.f32() + o * in;
        for (int64_t i = 0; i < in; i++) mr[i] += bk * ar[i];
      }
    merged[module + ".weight"] = std::move(m);
    count++;
  }
  DSVL2_REQUIRE(count > 0, "%s: no LoRA matrices found", ad.path().c_str());
  return count;
}

}  // namespace

}  // namespace dsvl2
