#include "train/checkpoint_out.h"

#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/file.h"
#include "io/safetensors.h"
#include "train/lora.h"

namespace dsvl2 {

namespace fs = std::filesystem;

void write_checkpoint_folder(const Checkpoint& base, const std::string& base_dir, const Replacements& replace,
                             const std::string& out_dir) {
  DSVL2_REQUIRE(!base.gguf() && is_directory(base_dir),
                "%s: writing a trained checkpoint needs a safetensors checkpoint folder", base_dir.c_str());
  std::error_code ec;
  DSVL2_REQUIRE(!fs::exists(out_dir) || !fs::equivalent(base_dir, out_dir, ec),
                "%s: the output folder must differ from the base folder", out_dir.c_str());
  for (const std::string& name : replace.names) {
    const TensorView* v = base.find(name);
    DSVL2_REQUIRE(v, "%s: the base checkpoint has no tensor %s", base_dir.c_str(), name.c_str());
    if (replace.shapes.count(name))
      DSVL2_REQUIRE(replace.shapes.at(name) == v->shape, "tensor %s is %s, the base's is %s", name.c_str(),
                    shape_str(replace.shapes.at(name)).c_str(), shape_str(v->shape).c_str());
    DSVL2_REQUIRE(v->dtype == DType::kF32 || v->dtype == DType::kF16 || v->dtype == DType::kBF16,
                  "%s: tensor %s is %s; only float tensors can be replaced", base_dir.c_str(), name.c_str(),
                  dtype_name(v->dtype));
  }
  fs::create_directories(out_dir, ec);
  DSVL2_REQUIRE(!ec, "%s: cannot create the folder (%s)", out_dir.c_str(), ec.message().c_str());
  std::vector<SafetensorsWriter::Entry> entries;
  const std::vector<std::string> names = base.names();
  for (const std::string& n : names) entries.push_back({n, base.find(n)->dtype, base.find(n)->shape});
  // Written beside and renamed over: an error or a kill never leaves a torn model.safetensors.
  const std::string final_path = path_join(out_dir, "model.safetensors"), tmp_path = final_path + ".partial";
  SafetensorsWriter w(tmp_path, entries, {{"format", "pt"}});
  std::vector<uint8_t> buf;
  for (const std::string& n : names) {
    const TensorView* v = base.find(n);
    if (!replace.names.count(n)) {
      w.write(v->data, v->nbytes);
      continue;
    }
    const Tensor t = replace.values(n);
    const int64_t count = v->numel();
    DSVL2_REQUIRE(t.dtype() == DType::kF32 && t.numel() == count, "tensor %s: %lld values for %lld", n.c_str(),
                  (long long)t.numel(), (long long)count);
    const float* src = t.f32();
    buf.resize(size_t(count) * dtype_size(v->dtype));
    for (int64_t i = 0; i < count; i++) {
      if (v->dtype == DType::kF32) {
        std::memcpy(buf.data() + i * 4, &src[i], 4);
      } else {
        const uint16_t h = v->dtype == DType::kBF16 ? f32_to_bf16(src[i]) : f32_to_f16(src[i]);
        std::memcpy(buf.data() + i * 2, &h, 2);
      }
    }
    w.write(buf.data(), buf.size());
  }
  w.close();
  sync_path(tmp_path);
  fs::rename(tmp_path, final_path, ec);
  DSVL2_REQUIRE(!ec, "%s: cannot rename into place (%s)", final_path.c_str(), ec.message().c_str());
  fs::remove(path_join(out_dir, "model.safetensors.index.json"), ec);  // a stale index would win over the new file
  // Everything else of the folder travels along (weights and their index excepted).
  for (const auto& e : fs::directory_iterator(base_dir)) {
    if (!e.is_regular_file()) continue;
    const std::string f = e.path().filename().string();
    if (f.ends_with(".safetensors") || f == "model.safetensors.index.json" || f.ends_with(".gguf")) continue;
    fs::copy_file(e.path(), fs::path(out_dir) / f, fs::copy_options::overwrite_existing, ec);
    DSVL2_REQUIRE(!ec, "%s: cannot copy into %s (%s)", e.path().c_str(), out_dir.c_str(), ec.message().c_str());
  }
}

void write_checkpoint_folder(const Checkpoint& base, const std::string& base_dir,
                             const std::map<std::string, const Tensor*>& replace, const std::string& out_dir) {
  Replacements r;
  for (const auto& [n, t] : replace) {
    r.names.insert(n);
    r.shapes[n] = t->shape();
  }
  r.values = [&](const std::string& n) {
    const Tensor* t = replace.at(n);
    Tensor copy = Tensor::f32_uninit(t->shape());
    std::memcpy(copy.data(), t->data(), t->nbytes());
    return copy;
  };
  write_checkpoint_folder(base, base_dir, r, out_dir);
}

namespace {

// One adapted matrix: its A [r, in] and B [out, r] as stored in the adapter file.
struct AdaptedModule {
  const TensorView* a = nullptr;
  const TensorView* b = nullptr;
};

// The adapter's modules by the base tensor they change ("...q_proj.weight").
std::map<std::string, AdaptedModule> adapter_modules(const SafetensorsFile& ad, const Checkpoint& base,
                                                     const std::string& base_dir, int rank) {
  const std::string prefix = "base_model.model.", a_suffix = ".lora_A.weight", b_suffix = ".lora_B.weight";
  std::map<std::string, AdaptedModule> out;
  for (const SafetensorsTensor& t : ad.tensors()) {
    const std::string& n = t.name;
    DSVL2_REQUIRE(n.rfind(prefix, 0) == 0 && (n.ends_with(a_suffix) || n.ends_with(b_suffix)),
                  "%s: tensor %s is not a LoRA A/B matrix", ad.path().c_str(), n.c_str());
    if (!n.ends_with(a_suffix)) continue;
    const std::string module = n.substr(prefix.size(), n.size() - prefix.size() - a_suffix.size());
    const SafetensorsTensor* bt = ad.find(prefix + module + b_suffix);
    DSVL2_REQUIRE(bt, "%s: %s has no lora_B", ad.path().c_str(), module.c_str());
    const TensorView* w = base.find(module + ".weight");
    DSVL2_REQUIRE(w && w->shape.size() == 2, "%s: the base has no matrix %s.weight", base_dir.c_str(), module.c_str());
    const int64_t rows = w->shape[0], in = w->shape[1];
    DSVL2_REQUIRE(t.view.numel() == rank * in && bt->view.numel() == rows * rank,
                  "%s: %s's adapter is not [%lld, %d] x [%d, %lld]", ad.path().c_str(), module.c_str(),
                  (long long)rows, rank, rank, (long long)in);
    out[module + ".weight"] = AdaptedModule{&t.view, &bt->view};
  }
  DSVL2_REQUIRE(!out.empty(), "%s: no LoRA matrices found", ad.path().c_str());
  return out;
}

}  // namespace

int merge_lora_folder(const std::string& base_dir, const std::string& adapter_dir, const std::string& out_dir) {
  const Checkpoint base(base_dir);
  const bool has_adapter = file_exists(path_join(adapter_dir, "adapter_config.json"));
  const std::string trained_path = path_join(adapter_dir, "trained.safetensors");
  DSVL2_REQUIRE(has_adapter || file_exists(trained_path),
                "%s: neither adapter_config.json (a LoRA adapter) nor trained.safetensors (trained tensors)",
                adapter_dir.c_str());
  // Tensors trained in full (projector, vision, ...) replace the base's.
  std::unique_ptr<SafetensorsFile> trained;
  if (file_exists(trained_path)) trained = std::make_unique<SafetensorsFile>(trained_path);
  LoraConfig cfg;
  std::unique_ptr<SafetensorsFile> ad;
  std::map<std::string, AdaptedModule> modules;
  if (has_adapter) {
    cfg = read_lora_config(adapter_dir);
    ad = std::make_unique<SafetensorsFile>(path_join(adapter_dir, "adapter_model.safetensors"));
    modules = adapter_modules(*ad, base, base_dir, cfg.rank);
  }
  Replacements r;
  if (trained)
    for (const SafetensorsTensor& t : trained->tensors()) {
      DSVL2_REQUIRE(!modules.count(t.name), "%s: %s is both trained in full and adapted", adapter_dir.c_str(),
                    t.name.c_str());
      r.names.insert(t.name);
      r.shapes[t.name] = t.view.shape;
    }
  for (const auto& [n, m] : modules) r.names.insert(n);
  DSVL2_REQUIRE(!r.names.empty(), "%s: nothing to merge", adapter_dir.c_str());
  r.values = [&](const std::string& name) {
    if (trained && trained->find(name)) return to_f32(trained->find(name)->view);
    const AdaptedModule& m = modules.at(name);  // W + (alpha / r) B A
    const TensorView* w = base.find(name);
    Tensor out = to_f32(*w);
    const Tensor a = to_f32(*m.a), b = to_f32(*m.b);
    const int64_t rows = w->shape[0], in = w->shape[1], rank = cfg.rank;
    const float s = cfg.scale();
    for (int64_t o = 0; o < rows; o++)
      for (int64_t k = 0; k < rank; k++) {
        const float bk = s * b.f32()[o * rank + k];
        if (bk == 0.f) continue;
        const float* ar = a.f32() + k * in;
        float* row = out.f32() + o * in;
        for (int64_t i = 0; i < in; i++) row[i] += bk * ar[i];
      }
    return out;
  };
  write_checkpoint_folder(base, base_dir, r, out_dir);
  return int(modules.size());
}

}  // namespace dsvl2
