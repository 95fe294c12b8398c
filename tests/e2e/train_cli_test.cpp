// `dsvl2 train` and `dsvl2 merge-lora` through the real binary on a toy
// checkpoint: a full fine-tune that memorises 16 answers which `dsvl2 run`
// then gives back, LoRA on image samples with ms-swift grounding (PEFT
// adapter names and config), the alignment stage with --export, bad JSONL
// lines (stop / skip), and --grad-check. Resuming: train_resume_cli_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "io/model_config.h"
#include "text/tokenizer.h"
#include "train/sft_jsonl.h"
#include "train_cli_fixture.h"

namespace dsvl2::train_cli {
namespace {

class TrainCli : public TrainCliBase {};

const std::vector<std::string> kWords = {"plum",   "tiger",  "violin", "meadow", "copper", "lantern",
                                         "harbor", "pepper", "saddle", "glacier", "walnut", "canyon",
                                         "ribbon", "falcon", "marble", "orchid"};

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \n\t"), b = s.find_last_not_of(" \n\t");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// 16 one-word answers, 16 epochs of the whole language model: the loss goes
// from chance level (ln 129280 ~ 11.8, more for a random model) to almost
// zero, and the merged checkpoint answers the training prompts under `dsvl2
// run`, whose prompt is the chat template's inference form of the same
// user turn (training supervises "<|Assistant|>:" -> answer + EOS).
TEST_F(TrainCli, FullFineTuneOverfitsAndTheMergedModelAnswers) {
  const std::string dir = test::temp_dir("train_overfit");
  std::vector<std::string> lines;
  for (size_t i = 0; i < kWords.size(); i++)
    lines.push_back(json{{"messages", json::array({msg("user", "Color " + std::to_string(i + 3) + "?"),
                                                   msg("assistant", kWords[i])})}}
                        .dump());
  write_lines(dir + "/words.jsonl", lines);
  const std::string out = dir + "/out";
  auto r = dsvl2("train -m " + toy() + " --data " + dir + "/words.jsonl --out " + out +
                 " --stage sft --epochs 16 --lr 3e-3 --warmup 5 -q -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(starts_with(r.out, "trained: 256 step(s), 256 sample(s)")) << r.out;

  const std::vector<json> log = read_log(out);
  ASSERT_EQ(log_steps(log), one_to(256));
  for (const json& j : log)
    for (const char* k : {"step", "epoch", "loss", "aux_loss", "grad_norm", "lr", "tokens_per_s", "samples_per_s"})
      ASSERT_TRUE(j.contains(k) && j[k].is_number()) << k << " in " << j.dump();
  EXPECT_GT(log.front()["loss"].get<double>(), 5.0);
  EXPECT_DOUBLE_EQ(log.back()["epoch"].get<double>(), 16.0);
  EXPECT_GT(log.back()["aux_loss"].get<double>(), 0.0);  // the toy's MoE layer balances its experts
  double tail = 0;
  for (size_t i = log.size() - 16; i < log.size(); i++) tail += log[i]["loss"].get<double>() / 16;
  EXPECT_LT(tail, 0.05);
  // Full fine-tune: no adapter, every language tensor in trained.safetensors.
  EXPECT_FALSE(file_exists(out + "/adapter_config.json"));
  std::vector<std::string> language;
  for (const std::string& n : names_of(read_tensors(toy() + "/model.safetensors")))
    if (starts_with(n, "language.") && n.find("e_score_correction_bias") == std::string::npos) language.push_back(n);
  EXPECT_EQ(names_of(read_tensors(out + "/trained.safetensors")), language);

  const std::string merged = dir + "/merged";
  r = dsvl2("merge-lora -m " + toy() + " --adapter " + out + " --out " + merged);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("merged 0 LoRA matrices"), std::string::npos) << r.out;
  for (size_t i : {0, 5, 10, 15}) {
    const std::string prompt = "Color " + std::to_string(i + 3) + "?";
    r = dsvl2("run -m " + merged + " -p '" + prompt + "' -n 4 -t 2");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(trim(r.out), kWords[i]) << prompt << "\n" << r.err;
  }
  remove_if_passed(dir);
}

// LoRA on every target kind, image samples with grounding: PEFT's adapter
// folder, and merge-lora folds it into a folder `dsvl2 run` loads with an image.
TEST_F(TrainCli, LoraOnImageSamplesWritesAPeftAdapter) {
  const std::string dir = test::temp_dir("train_lora"), out = dir + "/out", merged = dir + "/merged";
  auto r = dsvl2("train -m " + toy() + " --data " + data("img.jsonl") + " --out " + out +
                 " --stage sft --lora 8,16 --lora-targets q,k,v,o,experts,shared,dense --max-steps 4 --lr 1e-3 -q -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("trained: 4 step(s)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" 0 bad line(s)"), std::string::npos) << r.out;
  EXPECT_EQ(log_steps(read_log(out)), one_to(4));

  const json cfg = json::parse(read_file(out + "/adapter_config.json"));
  EXPECT_EQ(cfg.at("peft_type"), "LORA");
  EXPECT_EQ(cfg.at("r"), 8);
  EXPECT_EQ(cfg.at("lora_alpha").get<double>(), 16.0);
  const std::set<std::string> targets = cfg.at("target_modules").get<std::set<std::string>>();
  EXPECT_EQ(targets, (std::set<std::string>{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                            "down_proj"}));

  const auto adapter = read_tensors(out + "/adapter_model.safetensors");
  const auto base = read_tensors(toy() + "/model.safetensors");
  int n_a = 0;
  bool expert = false, shared = false, dense = false;
  const std::string prefix = "base_model.model.";
  for (const auto& [name, t] : adapter) {
    EXPECT_TRUE(starts_with(name, prefix + "language.model.layers.")) << name;
    const bool is_a = ends_with(name, ".lora_A.weight");
    ASSERT_TRUE(is_a || ends_with(name, ".lora_B.weight")) << name;
    const std::string module = name.substr(prefix.size(), name.size() - prefix.size() - 14);
    const auto w = base.find(module + ".weight");
    ASSERT_NE(w, base.end()) << name;
    ASSERT_EQ(w->second.shape.size(), 2u);
    // A [r, in], B [out, r].
    const Shape want = is_a ? Shape{8, w->second.shape[1]} : Shape{w->second.shape[0], 8};
    EXPECT_EQ(t.shape, want) << name;
    if (!is_a) continue;
    n_a++;
    EXPECT_TRUE(adapter.count(prefix + module + ".lora_B.weight")) << module;
    expert |= module.find(".mlp.experts.") != std::string::npos;
    shared |= module.find(".mlp.shared_experts.") != std::string::npos;
    dense |= module.find("layers.0.mlp.gate_proj") != std::string::npos;
  }
  EXPECT_GT(n_a, 0);
  EXPECT_TRUE(expert && shared && dense);
  EXPECT_FALSE(file_exists(out + "/trained.safetensors"));  // nothing trained in full

  r = dsvl2("merge-lora -m " + toy() + " --adapter " + out + " --out " + merged);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("merged " + std::to_string(n_a) + " LoRA matrices"), std::string::npos) << r.out;
  const auto m = read_tensors(merged + "/model.safetensors");
  ASSERT_EQ(names_of(m), names_of(base));
  int changed = 0;
  for (const auto& [name, t] : m) {
    if (!starts_with(name, "language.")) {
      EXPECT_TRUE(t == base.at(name)) << name;
    }
    changed += !(t == base.at(name));
    EXPECT_EQ(t.dtype, base.at(name).dtype) << name;
  }
  EXPECT_GT(changed, 0);
  r = dsvl2("run -m " + merged + " --image " + data("a.png") + " -p 'Find the sheep.' -n 3 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("decode 3 tokens"), std::string::npos) << r.err;
  remove_if_passed(dir);
}

// Stage 1: the projector, image_newline, view_seperator (and with
// --train-vision the SigLIP tower) train, the language model stays frozen;
// --export writes a complete folder whose language tensors are the base's bytes.
TEST_F(TrainCli, AlignStageTrainsOnlyTheVisionSide) {
  const std::string dir = test::temp_dir("train_align"), out = dir + "/out", exp = dir + "/export";
  auto r = dsvl2("train -m " + toy() + " --data " + data("img.jsonl") + " --out " + out +
                 " --stage align --train-vision --max-steps 2 --lr 1e-3 --export " + exp + " -q -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto trained = read_tensors(out + "/trained.safetensors");
  std::set<std::string> kinds;
  for (const std::string& n : names_of(trained)) {
    const bool ok = starts_with(n, "projector.") || n == "image_newline" || n == "view_seperator" ||
                    (starts_with(n, "vision.") && !starts_with(n, "vision.attn_pool."));
    EXPECT_TRUE(ok) << n;
    kinds.insert(n.substr(0, n.find('.')));
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"projector", "image_newline", "view_seperator", "vision"}));
  EXPECT_FALSE(file_exists(out + "/adapter_config.json"));

  for (const char* f : {"config.json", "processor_config.json", "tokenizer.json", "model.safetensors"})
    EXPECT_TRUE(file_exists(exp + "/" + f)) << f;
  const auto base = read_tensors(toy() + "/model.safetensors"), e = read_tensors(exp + "/model.safetensors");
  ASSERT_EQ(names_of(e), names_of(base));
  int projector = 0;
  for (const auto& [name, t] : e) {
    if (starts_with(name, "language.")) {
      EXPECT_TRUE(t == base.at(name)) << name;
    }
    if (starts_with(name, "projector.")) {
      projector++;
      EXPECT_FALSE(t.bytes == base.at(name).bytes) << name;
    }
    EXPECT_EQ(t.dtype, base.at(name).dtype) << name;
    EXPECT_EQ(t.shape, base.at(name).shape) << name;
    if (!trained.count(name)) {
      EXPECT_TRUE(t == base.at(name)) << name;  // untrained: the base's bytes
    }
  }
  EXPECT_GT(projector, 0);
  r = dsvl2("run -m " + exp + " --image " + data("b.png") + " -p 'What is this?' -n 2 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("decode 2 tokens"), std::string::npos) << r.err;
  remove_if_passed(dir);
}

// Bad lines: each kind alone stops the run at its FILE:LINE; mixed, the
// first one is named; with --on-bad-line skip they are counted on stderr
// (even with -q) and the good lines train.
TEST_F(TrainCli, BadLinesStopAtTheFirstOrAreSkippedAndCounted) {
  const std::string dir = test::temp_dir("train_bad");
  const std::string good = json{{"messages", json::array({msg("user", "Hi?"), msg("assistant", "Hello.")})}}.dump();
  std::string long_q;
  for (int i = 0; i < 40; i++) long_q += "long ";
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"({"messages": [oops)", "not valid JSON"},
      {R"({"messages":[{"role":"user","content":"<image>What?"},{"role":"assistant","content":"x"}],"images":["nothere.png"]})",
       "nothere.png' not found"},
      {R"({"messages":[{"role":"user","content":"only a question"}]})", "no supervised token"},
      {json{{"messages", json::array({msg("user", long_q), msg("assistant", "y")})}}.dump(), "over the maximum length 32"},
  };
  const std::string args = " --max-length 32 --max-steps 2 -q -t 2";
  for (size_t i = 0; i < bad.size(); i++) {
    const std::string f = dir + "/bad" + std::to_string(i) + ".jsonl";
    write_lines(f, {good, bad[i].first, good});
    auto r = dsvl2("train -m " + toy() + " --data " + f + " --out " + dir + "/o" + std::to_string(i) + args);
    expect_one_line_error(r, f + ":2: ");
    EXPECT_NE(r.err.find(bad[i].second), std::string::npos) << r.err;
  }

  const std::string mixed = dir + "/mixed.jsonl";
  write_lines(mixed, {good, bad[0].first, good, bad[1].first, bad[2].first, bad[3].first, good});
  auto r = dsvl2("train -m " + toy() + " --data " + mixed + " --out " + dir + "/stop" + args);
  expect_one_line_error(r, mixed + ":2: not valid JSON");
  EXPECT_FALSE(file_exists(dir + "/stop/train_log.jsonl"));

  r = dsvl2("train -m " + toy() + " --data " + mixed + " --out " + dir + "/skip --lora 2 --on-bad-line skip" + args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("skipped 4 bad line(s) of 7"), std::string::npos) << r.err;
  for (const char* line : {":2: ", ":4: ", ":5: ", ":6: "}) EXPECT_NE(r.err.find(mixed + line), std::string::npos) << line;
  EXPECT_NE(r.out.find(" 4 bad line(s)"), std::string::npos) << r.out;
  EXPECT_EQ(log_steps(read_log(dir + "/skip")), one_to(2));
  remove_if_passed(dir);
}

// Settings refused before anything runs or is written, and outputs that a
// fresh run must not inherit from an earlier one in the same folder.
TEST_F(TrainCli, RefusesBadSettingsAndNeverTouchesTheBase) {
  const std::string dir = test::temp_dir("train_settings");
  const std::string f = dir + "/d.jsonl";
  write_lines(f, {json{{"messages", json::array({msg("user", "Hi?"), msg("assistant", "Hello.")})}}.dump()});
  for (const char* bad : {" --lora 0", " --lora -4", " --lora 8 --export " /* + dir */, " --min-lr 1 --lr 0.1"}) {
    std::string extra = bad;
    if (extra.find("--export") != std::string::npos) extra += dir + "/e";
    auto r = dsvl2("train -m " + toy() + " --data " + f + " --out " + dir + "/o --max-steps 1 -q -t 2" + extra);
    EXPECT_NE(r.exit_code, 0) << extra;
    EXPECT_FALSE(file_exists(dir + "/o/train_log.jsonl")) << extra << ": ran before refusing";
  }
  // A fresh LoRA run in a folder where an alignment run left trained.safetensors:
  // merge-lora must not fold the stale projector in.
  auto r = dsvl2("train -m " + toy() + " --data " + f + " --out " + dir + "/o --stage align --max-steps 1 -q -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(file_exists(dir + "/o/trained.safetensors"));
  r = dsvl2("train -m " + toy() + " --data " + f + " --out " + dir + "/o --lora 2 --max-steps 1 -q -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(file_exists(dir + "/o/trained.safetensors"));
  // merge-lora with the base named as its weights file: refused, the base intact.
  const std::string weights = toy() + "/model.safetensors";
  const std::string before = read_file(weights);
  r = dsvl2("merge-lora -m " + weights + " --adapter " + dir + "/o --out " + toy());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(read_file(weights) == before) << "the base checkpoint was changed";
  remove_if_passed(dir);
}

// --grad-check: one clear error line for inconsistent inputs; on a good
// image sample, the loss and a gradient for every parameter but the unused
// attention-pool head, and the loss equals a training run's first loss.
TEST_F(TrainCli, GradCheckRefusesBadInputsAndWritesEveryGradient) {
  const std::string dir = test::temp_dir("train_gradcheck");
  write_file(dir + "/ids.json", "[0, 100, 200, 300, 1]");
  write_file(dir + "/labels.json", "[-100, -100, 200, 300, 1]");
  write_file(dir + "/labels4.json", "[-100, 200, 300, 1]");
  const std::string gc = "train -m " + toy() + " --grad-check " + dir + "/g.safetensors -t 2";
  expect_one_line_error(dsvl2(gc + " --input-ids " + dir + "/ids.json --labels " + dir + "/labels4.json"),
                        "5 input ids and 4 labels");
  expect_one_line_error(
      dsvl2(gc + " --input-ids " + dir + "/ids.json --labels " + dir + "/labels.json --image " + data("a.png")),
      "the input ids hold 0 image tokens");
  expect_one_line_error(
      dsvl2(gc + " --input-ids " + dir + "/ids.json --labels " + dir + "/labels.json --image " + dir + "/nothere.png"),
      "nothere.png");
  EXPECT_FALSE(file_exists(dir + "/g.safetensors"));

  // A good sample: the first line of img.jsonl, as the training reader builds it.
  const std::string one = dir + "/one.jsonl";
  json sample = json::parse(R"({"messages":[{"role":"user","content":"<image>Find <ref-object>."},)"
                            R"({"role":"assistant","content":"<bbox>"}],"objects":{"ref":["sheep"],"bbox":[[10,8,40,30]]}})");
  sample["images"] = json::array({data("a.png")});
  write_lines(one, {sample.dump()});
  {
    const Tokenizer tok = Tokenizer::load(toy());
    const ProcessorConfig proc = processor_config_for(toy(), load_vl_config(toy()));
    SftJsonlReader reader(one, tok, proc);
    const auto s = reader.next(false);
    ASSERT_TRUE(s.has_value());
    write_file(dir + "/img_ids.json", json(s->input_ids).dump());
    write_file(dir + "/img_labels.json", json(s->labels).dump());
  }
  auto r = dsvl2(gc + " --input-ids " + dir + "/img_ids.json --labels " + dir + "/img_labels.json --image " +
                 data("a.png"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(starts_with(r.out, "loss ")) << r.out;
  const double printed = std::stod(r.out.substr(5));
  const auto g = read_tensors(dir + "/g.safetensors");
  const auto base = read_tensors(toy() + "/model.safetensors");
  for (const char* k : {"loss", "aux_loss"}) {
    ASSERT_TRUE(g.count(k)) << k;
    EXPECT_EQ(g.at(k).dtype, DType::kF32);
    EXPECT_EQ(g.at(k).shape, Shape{1});
  }
  float loss = 0, aux = 0;
  std::memcpy(&loss, g.at("loss").bytes.data(), 4);
  std::memcpy(&aux, g.at("aux_loss").bytes.data(), 4);
  EXPECT_TRUE(std::isfinite(loss) && loss > 0);
  EXPECT_GT(aux, 0.f);
  EXPECT_NEAR(printed, loss, 1e-5 * loss);
  std::set<std::string> want, got;
  for (const auto& [name, t] : base)
    if (!starts_with(name, "vision.attn_pool.")) want.insert("grad." + name);
  for (const auto& [name, t] : g)
    if (name != "loss" && name != "aux_loss") got.insert(name);
  EXPECT_EQ(got, want);
  bool vision_grad = false;  // the image reaches the tower
  for (const auto& [name, t] : g) {
    if (!starts_with(name, "grad.")) continue;
    EXPECT_EQ(t.dtype, DType::kF32) << name;
    EXPECT_EQ(t.shape, base.at(name.substr(5)).shape) << name;
    if (starts_with(name, "grad.vision."))
      vision_grad |= t.bytes.find_first_not_of(std::string(1, '\0')) != std::string::npos;
  }
  EXPECT_TRUE(vision_grad);

  // The same sample's first training step takes the same loss (f32, no update yet;
  // what trains does not change the forward pass).
  r = dsvl2("train -m " + toy() + " --data " + one + " --out " + dir + "/train --stage align --max-steps 1 -q -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<json> log = read_log(dir + "/train");
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NEAR(log[0]["loss"].get<double>(), loss, 1e-5 * loss);
  EXPECT_NEAR(log[0]["aux_loss"].get<double>(), aux, 1e-5 * aux + 1e-9);
  remove_if_passed(dir);
}

}  // namespace
}  // namespace dsvl2::train_cli
