// Training against the official code in training mode (fp32 autograd): the
// loss, the summed MoE balance losses, the gradient of every parameter (the
// `dsvl2 train --grad-check` contract, run through the CLI and the library)
// and two AdamW steps on the projector. Tolerances from the golden README:
// loss 1e-5 relative, each gradient 1e-4 of its largest magnitude, AdamW 1e-5.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/file.h"
#include "core/thread_pool.h"
#include "image/image.h"
#include "image/preprocess.h"
#include "io/checkpoint.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "test_util.h"
#include "train/adamw.h"
#include "train/grad_check.h"
#include "train/vl_train.h"

namespace dsvl2 {
namespace {

constexpr const char* kCases[] = {"tiny_like", "small_like", "base_like"};

std::vector<int32_t> golden_ids(const SafetensorsFile& f, const std::string& name) {
  const SafetensorsTensor* t = f.find(name);
  if (!t || t->view.dtype != DType::kI64) {
    ADD_FAILURE() << f.path() << ": missing I64 " << name;
    return {};
  }
  std::vector<int32_t> out(size_t(t->view.numel()));
  for (size_t i = 0; i < out.size(); i++) out[i] = int32_t(static_cast<const int64_t*>(t->view.data)[i]);
  return out;
}

std::string write_ids(const std::string& path, const std::vector<int32_t>& ids) {
  write_file(path, nlohmann::json(ids).dump());
  return path;
}

// Worst max|g - g_ref| / max|g_ref| over the tensors; every name on both sides.
double compare_grads(const SafetensorsFile& got, const SafetensorsFile& ref, const std::string& sample,
                     const std::string& tag, std::string* worst_name) {
  const std::string prefix = sample + ".grad.";
  std::set<std::string> want;
  double worst = 0;
  for (const SafetensorsTensor& t : ref.tensors()) {
    if (t.name.rfind(prefix, 0) != 0) continue;
    const std::string name = t.name.substr(prefix.size());
    want.insert(name);
    const SafetensorsTensor* g = got.find("grad." + name);
    if (!g) {
      ADD_FAILURE() << tag << ": no gradient for " << name;
      continue;
    }
    const Tensor a = to_f32(g->view), b = to_f32(t.view);
    EXPECT_EQ(a.numel(), b.numel()) << tag << " " << name;
    if (a.numel() != b.numel()) continue;
    double mx = 0, diff = 0;
    for (int64_t i = 0; i < a.numel(); i++) {
      mx = std::max(mx, double(std::fabs(b.f32()[i])));
      diff = std::max(diff, double(std::fabs(a.f32()[i] - b.f32()[i])));
    }
    const double ratio = mx > 0 ? diff / mx : diff;
    EXPECT_LE(ratio, 1e-4) << tag << " grad." << name << ": max diff " << diff << ", max |ref| " << mx;
    if (ratio > worst) worst = ratio, *worst_name = name;
  }
  EXPECT_FALSE(want.empty()) << tag << ": the reference has no gradients";
  for (const SafetensorsTensor& t : got.tensors()) {
    if (t.name.rfind("grad.", 0) == 0) {
      EXPECT_TRUE(want.count(t.name.substr(5))) << tag << ": extra " << t.name;
    }
  }
  return worst;
}

class TrainGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(TrainGolden, LossAndEveryGradientMatchTheOfficialAutograd) {
  DSVL2_REQUIRE_GOLDEN();
  const std::string dir = test::golden_dir() + "/" + GetParam();
  const nlohmann::json exp = nlohmann::json::parse(read_file(dir + "/train_expected.json"));
  const SafetensorsFile ref(dir + "/train_expected.safetensors");
  const std::string tmp = test::temp_dir(std::string("train_golden_") + GetParam());
  ASSERT_FALSE(exp["samples"].empty());
  bool via_cli = true;  // the first sample through the command line, the others through the library
  for (const auto& [name, s] : exp["samples"].items()) {
    const std::vector<int32_t> ids = golden_ids(ref, name + ".input_ids"), labels = golden_ids(ref, name + ".labels");
    std::vector<std::string> images;
    for (const auto& f : s["images"]) images.push_back(dir + "/" + f.get<std::string>());
    const std::string out = tmp + "/" + name + ".safetensors";
    const std::string tag = std::string(GetParam()) + "." + name;
    if (via_cli) {
      std::string cmd = test::dsvl2_binary() + " train -m " + dir + " --grad-check " + out + " --input-ids " +
                        write_ids(tmp + "/ids.json", ids) + " --labels " + write_ids(tmp + "/labels.json", labels) +
                        " --compute f32 -t 2";
      for (const std::string& i : images) cmd += " --image " + i;
      const test::CommandResult r = test::run_command(cmd);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      via_cli = false;
    } else {
      GradCheckInputs in;
      in.model_dir = dir;
      in.images = images;
      in.input_ids = ids;
      in.labels = labels;
      ThreadPool pool(2);
      run_grad_check(in, out, pool);
    }
    const SafetensorsFile got(out);
    const float loss = to_f32(got.find("loss")->view).f32()[0], aux = to_f32(got.find("aux_loss")->view).f32()[0];
    const double want_loss = s["loss"].get<double>(), want_aux = s["aux_loss_sum"].get<double>();
    EXPECT_NEAR(loss, want_loss, 1e-5 * std::fabs(want_loss)) << tag;
    EXPECT_NEAR(aux, want_aux, 1e-5 * std::max(1e-3, std::fabs(want_aux))) << tag;
    std::string worst_name;
    const double worst = compare_grads(got, ref, name, tag, &worst_name);
    std::printf("  %-22s loss %.7f (ref %.7f)  aux %.6g (ref %.6g)  worst grad ratio %.2e (%s)\n", tag.c_str(), loss,
                want_loss, aux, want_aux, worst, worst_name.c_str());
  }
}

TEST_P(TrainGolden, TwoAdamWStepsOnTheProjector) {
  DSVL2_REQUIRE_GOLDEN();
  const std::string dir = test::golden_dir() + "/" + GetParam();
  const nlohmann::json exp = nlohmann::json::parse(read_file(dir + "/train_expected.json"));
  const SafetensorsFile ref(dir + "/train_expected.safetensors");
  const VLConfig cfg = load_vl_config(dir);
  const ProcessorConfig proc = processor_config_for(dir, cfg);
  const Checkpoint ckpt(dir);
  ThreadPool pool(2);
  const TrainOps t{Ops{&kernels_best(), &pool, Compute::kF32}, &grad_kernels_best()};
  const auto& a = exp["adamw"];
  AdamWConfig ac;
  ac.lr = a["lr"].get<double>();
  ac.beta1 = a["betas"][0].get<double>();
  ac.beta2 = a["betas"][1].get<double>();
  ac.eps = a["eps"].get<double>();
  ac.weight_decay = a["weight_decay"].get<double>();
  for (const auto& [name, s] : exp["samples"].items()) {
    ParamStore ps(ckpt, is_unused_parameter);
    ps.set_trainable([](const std::string& n) { return n.rfind("projector.", 0) == 0; });
    VlTrain model(cfg, ps);
    SftSample sample;
    sample.input_ids = golden_ids(ref, name + ".input_ids");
    sample.labels = golden_ids(ref, name + ".labels");
    std::vector<Image> imgs;
    for (const auto& f : s["images"]) imgs.push_back(load_image(dir + "/" + f.get<std::string>()));
    PreprocessResult pre = preprocess_images(imgs, proc, CropMode::kAuto);
    sample.images = std::move(pre);
    for (int32_t id : sample.input_ids) sample.image_mask.push_back(id == 100);  // the stub tokenizer's <image>
    AdamW opt(ac);
    for (int step = 0; step < 2; step++) {
      ps.zero_grad();
      const LossParts l = model.step(sample, t, 1.f, step == 1);  // the second with recomputation
      const double want = s["adamw_step_losses"][step].get<double>();
      EXPECT_NEAR(l.loss, want, 1e-5 * want) << name << " step " << step + 1;
      opt.step(ps, ac.lr);
    }
    // AdamW's first step moves a weight by lr * g / (|g| + eps): where |g| is
    // within a few hundred eps (1e-8) of zero, the step follows the gradient's
    // rounding noise (the reference's fp32 noise floor is 4.4e-6 of a tensor's
    // largest gradient, far above eps), so such weights get a wider bound.
    double worst = 0, worst_noisy = 0;
    int noisy = 0;
    for (const Param& p : ps.all()) {
      if (!p.trainable) continue;
      const SafetensorsTensor* r = ref.find(name + ".adamw2." + p.name);
      const SafetensorsTensor* g1 = ref.find(name + ".grad." + p.name);
      ASSERT_TRUE(r && g1) << p.name;
      const Tensor want = to_f32(r->view), grad = to_f32(g1->view);
      ASSERT_EQ(want.numel(), p.numel());
      for (int64_t i = 0; i < p.numel(); i++) {
        const double d = std::fabs(p.f32()[i] - want.f32()[i]);
        if (std::fabs(grad.f32()[i]) < 300 * ac.eps) {
          noisy++;
          worst_noisy = std::max(worst_noisy, d);
        } else {
          worst = std::max(worst, d);
        }
      }
    }
    EXPECT_LE(worst_noisy, 0.1 * ac.lr) << GetParam() << "." << name;
    EXPECT_LE(worst, 1e-5) << GetParam() << "." << name;
    std::printf("  %s.%s AdamW x2 projector: max |diff| %.2e (%d weights with |g| < 300 eps: %.2e)\n", GetParam(),
                name.c_str(), worst, noisy, worst_noisy);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, TrainGolden, ::testing::ValuesIn(kCases));

}  // namespace
}  // namespace dsvl2
