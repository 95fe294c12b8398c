#include "train/train_state.h"

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.h"
#include "core/file.h"
#include "io/safetensors.h"

namespace dsvl2 {

namespace fs = std::filesystem;

void save_trainable(const ParamStore& ps, const std::string& path) {
  std::vector<std::pair<std::string, const Tensor*>> t;
  for (const Param& p : ps.all())
    if (p.trainable) t.push_back({p.name, &p.value});
  save_safetensors(path, t);
}

void load_trainable(ParamStore& ps, const std::string& path) {
  const SafetensorsFile f(path);
  for (Param& p : ps.all()) {
    if (!p.trainable) continue;
    const SafetensorsTensor* t = f.find(p.name);
    DSVL2_REQUIRE(t, "%s: no values for the trainable parameter %s", path.c_str(), p.name.c_str());
    DSVL2_REQUIRE(t->view.dtype == DType::kF32 && t->view.numel() == p.numel(),
                  "%s: %s is %s %s, expected F32 %s", path.c_str(), p.name.c_str(), dtype_name(t->view.dtype),
                  shape_str(t->view.shape).c_str(), shape_str(p.shape).c_str());
    std::memcpy(p.f32_mut(), t->view.data, size_t(p.numel()) * 4);
  }
}

void save_train_checkpoint(const std::string& out_dir, const ParamStore& ps, AdamW& opt, const TrainProgress& p) {
  const std::string dir = path_join(out_dir, "checkpoint"), tmp = path_join(out_dir, "checkpoint.tmp"),
                    old = path_join(out_dir, "checkpoint.old");
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  save_trainable(ps, path_join(tmp, "trained.safetensors"));
  std::vector<std::pair<std::string, const Tensor*>> m;
  for (const auto& [k, v] : opt.moments()) m.push_back({k, &v});
  save_safetensors(path_join(tmp, "optimizer.safetensors"), m);
  const nlohmann::json j = {{"step", p.step}, {"consumed", p.consumed}, {"adamw_steps", opt.steps()},
                            {"fingerprint", p.fingerprint}};
  write_file(path_join(tmp, "state.json"), j.dump(2) + "\n");
  // On the disk before the swap: a power loss must not leave a complete-looking folder of torn files.
  for (const char* f : {"trained.safetensors", "optimizer.safetensors"}) sync_path(path_join(tmp, f));
  sync_path(tmp);
  // tmp is complete: swap it in (a kill between the renames leaves checkpoint.old, which load accepts).
  // With no checkpoint/ (a run resumed from checkpoint.old), checkpoint.old is the only complete one and
  // stays until tmp has taken checkpoint/'s place.
  if (fs::exists(dir)) {
    fs::remove_all(old);
    fs::rename(dir, old);
  }
  fs::rename(tmp, dir);
  sync_path(out_dir);  // the renames themselves
  fs::remove_all(old);
}

bool load_train_checkpoint(const std::string& out_dir, ParamStore& ps, AdamW& opt, const std::string& fingerprint,
                           TrainProgress* p) {
  std::string dir = path_join(out_dir, "checkpoint");
  if (!fs::exists(path_join(dir, "state.json"))) dir = path_join(out_dir, "checkpoint.old");
  if (!fs::exists(path_join(dir, "state.json"))) return false;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path_join(dir, "state.json")));
  } catch (const nlohmann::json::exception& e) {
    DSVL2_FAIL("%s/state.json: not JSON (%s)", dir.c_str(), e.what());
  }
  DSVL2_REQUIRE(j.is_object() && j["step"].is_number_integer() && j["consumed"].is_number_integer() &&
                    j["adamw_steps"].is_number_integer() && j["fingerprint"].is_string(),
                "%s/state.json: step, consumed, adamw_steps and fingerprint are required", dir.c_str());
  DSVL2_REQUIRE(j["fingerprint"].get<std::string>() == fingerprint,
                "%s: the checkpoint was made with other settings (%s) than this run's (%s); resume with the same "
                "data, stage, LoRA, accumulation and seed",
                dir.c_str(), j["fingerprint"].get<std::string>().c_str(), fingerprint.c_str());
  load_trainable(ps, path_join(dir, "trained.safetensors"));
  const SafetensorsFile f(path_join(dir, "optimizer.safetensors"));
  opt.moments().clear();
  for (const SafetensorsTensor& t : f.tensors()) {
    Tensor v = Tensor::f32(t.view.shape);
    DSVL2_REQUIRE(t.view.dtype == DType::kF32, "%s: optimizer tensor %s is not F32", f.path().c_str(), t.name.c_str());
    std::memcpy(v.data(), t.view.data, v.nbytes());
    opt.moments()[t.name] = std::move(v);
  }
  opt.set_steps(j["adamw_steps"].get<int64_t>());
  p->step = j["step"].get<int64_t>();
  p->consumed = j["consumed"].get<int64_t>();
  p->fingerprint = fingerprint;
  return true;
}

}  // namespace dsvl2
