// `dsvl2 bench`: the machine's rooflines and the model's workloads measured in
// one run, each workload reported as a fraction of its roofline:
//   vision s/tile (bf16 compute peak), prefill tok/s (bf16 peak), decode tok/s
//   (memory bandwidth over the active weights), time to first token for a
//   640x480 image + a 20-token question, and peak RSS.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "command.h"
#include "core/error.h"
#include "core/rng.h"
#include "model/cost.h"
#include "model/sequence.h"
#include "model/vl_model.h"
#include "ops/roofline.h"

namespace dsvl2::cli {
namespace {

struct BenchFlags {
  std::string model, compute = "bf16", against;
  bool quick = false, json = false;
  int threads = 0;
};

// Next-token agreement of `model` with a reference checkpoint (normally the
// BF16 one it was quantized from) over every position of a random-text
// prompt: top-1 agreement and mean KL(reference || model).
struct Quality {
  int tokens = 0;
  double top1 = 0, mean_kl = 0;
};

Quality measure_quality(const Tensor& logits, const std::string& reference, const std::vector<int>& prompt,
                        const Ops& ops) {
  VisionLanguageModel ref(reference);
  const LanguageConfig& L = ref.config().language;
  DSVL2_REQUIRE(L.vocab_size == logits.dim(1), "--against %s: vocabulary %d differs from the model's %lld",
                reference.c_str(), L.vocab_size, (long long)logits.dim(1));
  KVCache cache(L, int(prompt.size()) + 1, kv_dtype_for(ops.compute));
  Tensor e = ref.language().embed(prompt);
  Tensor want = ref.language().forward(e.f32(), int(prompt.size()), cache, ops, LogitsMode::kAll);
  const int64_t T = want.dim(0), V = want.dim(1);
  Quality q;
  q.tokens = int(T);
  std::vector<double> la(static_cast<size_t>(V)), lb(static_cast<size_t>(V));
  auto log_softmax = [V](const float* x, std::vector<double>& out) {
    const double mx = *std::max_element(x, x + V);
    double sum = 0;
    for (int64_t i = 0; i < V; i++) sum += std::exp(double(x[i]) - mx);
    const double lse = mx + std::log(sum);
    for (int64_t i = 0; i < V; i++) out[size_t(i)] = double(x[i]) - lse;
  };
  for (int64_t t = 0; t < T; t++) {
    const float* a = want.f32() + t * V;
    const float* b = logits.f32() + t * V;
    q.top1 += argmax(a, V) == argmax(b, V);
    log_softmax(a, la);
    log_softmax(b, lb);
    for (int64_t i = 0; i < V; i++) q.mean_kl += std::exp(la[size_t(i)]) * (la[size_t(i)] - lb[size_t(i)]);
  }
  q.top1 /= double(T);
  q.mean_kl /= double(T);
  return q;
}

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double peak_rss_gb() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) * 1024.0 / 1e9;  // ru_maxrss is in KiB on Linux
}

// A deterministic 640x480 RGB test card (no file needed).
Image test_image(int w, int h) {
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize(size_t(w) * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      uint8_t* p = &img.rgb[(size_t(y) * w + x) * 3];
      p[0] = uint8_t(x * 255 / w);
      p[1] = uint8_t(y * 255 / h);
      p[2] = uint8_t((x ^ y) & 255);
    }
  return img;
}

std::vector<int32_t> random_text_ids(int n, int vocab, uint64_t seed) {
  Rng rng(seed);
  const int hi = std::max(1001, std::min(vocab, 100000) - 1);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& t : ids) t = rng.randint(1000, hi);
  return ids;
}

// The stored types of the matrices a decoded token reads: the routed
// experts', the other MLP matrices' (shared experts, else the dense MLP),
// attention's (o_proj) and lm_head's (the embedding table when it is tied).
// A mix such as `quantize --type q4_m` stores them in different types.
struct WeightTypes {
  DType experts, mlp, attention, head;
  // "q4_0"; for a mix its distinct types, the experts' first: "iq4_nl+q8_0".
  std::string name() const {
    std::string s;
    for (DType t : {experts, mlp, attention, head}) {
      std::string n = dtype_name(t);
      for (auto& c : n) c = char(std::tolower(c));
      if (s.empty()) s = n;
      else if (("+" + s + "+").find("+" + n + "+") == std::string::npos) s += "+" + n;
    }
    return s;
  }
};

WeightTypes weight_types(const VisionLanguageModel& m) {
  const auto& L = m.config().language;
  Checkpoint ck(m.dir());
  auto stored = [&](const std::string& name) -> const TensorView* { return ck.find(name); };
  const TensorView* head = stored("language.lm_head.weight");
  if (!head) head = stored("language.model.embed_tokens.weight");
  const int l = L.num_hidden_layers - 1;
  const TensorView* experts =
      L.n_routed_experts > 0 ? stored(strformat("language.model.layers.%d.mlp.experts.0.up_proj.weight", l)) : head;
  const TensorView* mlp = stored(strformat("language.model.layers.%d.mlp.shared_experts.up_proj.weight", l));
  if (!mlp) mlp = stored("language.model.layers.0.mlp.up_proj.weight");
  if (!mlp) mlp = experts;
  const TensorView* attn = stored(strformat("language.model.layers.%d.self_attn.o_proj.weight", l));
  DSVL2_REQUIRE(head && experts && mlp && attn, "%s: no lm_head, MLP or o_proj matrix to read the weight types from",
                m.dir().c_str());
  return {experts->dtype, mlp->dtype, attn->dtype, head->dtype};
}

int run_bench(const BenchFlags& f) {
  Compute compute;
  if (!parse_compute(f.compute, &compute)) DSVL2_FAIL("--compute must be f32 or bf16");
  ThreadPool pool(f.threads);
  auto say = [&](const char* fmt, auto... args) {
    if (!f.json) {
      std::fprintf(stderr, fmt, args...);
      std::fflush(stderr);
    }
  };
  say("measuring rooflines (%d threads) ...\n", pool.size());
  Roofline roof = measure_roofline(pool, f.quick);
  const double compute_peak = compute == Compute::kBF16 ? roof.bf16_gflops : roof.f32_gflops;

  auto t0 = std::chrono::steady_clock::now();
  VisionLanguageModel model(f.model);
  Ops ops{&kernels_best(), &pool, compute};
  // As run, chat and ground do: where nothing is packed (AVX2 kernels on bf16
  // weights) the weights are populated, so no workload pays their page faults.
  model.make_ready(ops);
  const double load_s = since(t0);
  const LanguageConfig& L = model.config().language;
  const LanguageCost cost = language_cost_per_token(L);
  const WeightTypes wtypes = weight_types(model);
  const std::string wtype = wtypes.name();

  // Vision: one 384x384 image without cropping = 2 tiles (global + local),
  // the best of three runs (one run varies by up to 25% on a shared machine).
  say("vision ...\n");
  PreprocessResult tile = preprocess_images({test_image(384, 384)}, model.processor(), CropMode::kOff);
  double vision_s_per_tile = 1e30;
  for (int rep = 0; rep < (f.quick ? 1 : 3); rep++) {
    t0 = std::chrono::steady_clock::now();
    model.vision().embed_images(tile.pixel_values, tile.images_spatial_crop, ops);
    vision_s_per_tile = std::min(vision_s_per_tile, since(t0) / double(tile.pixel_values.dim(0)));
  }
  const double vision_flops = model.vision().tower.flops_per_tile();

  // Bytes per weight a decoded token reads, each part at its stored type (the
  // average over the parts for a mix; batched steps use it for their extra
  // experts too).
  auto bpp = [](DType t) { return double(dtype_block_bytes(t)) / double(dtype_block_elems(t)); };
  const int64_t other_mlp = cost.linear_params - cost.attention_params - cost.head_params - cost.routed_params;
  const double bytes_per_param =
      (double(cost.routed_params) * bpp(wtypes.experts) + double(other_mlp) * bpp(wtypes.mlp) +
       double(cost.attention_params) * bpp(wtypes.attention) + double(cost.head_params) * bpp(wtypes.head)) /
      double(cost.linear_params);

  // Prefill: a text-only prompt into an empty cache, logits for the last position.
  // Quick mode runs the same workloads, fewer times: its figures must agree with full mode's.
  const int n_prefill = 512, n_decode = 128;
  say("prefill %d tokens ...\n", n_prefill);
  std::vector<int32_t> prompt = random_text_ids(n_prefill, L.vocab_size, 1);
  {
    KVCache cache(L, n_prefill + n_decode + 1, kv_dtype_for(ops.compute));
    Tensor e = model.language().embed(std::vector<int>(prompt.begin(), prompt.end()));
    t0 = std::chrono::steady_clock::now();
    model.language().forward(e.f32(), n_prefill, cache, ops, LogitsMode::kLast);
  }
  const double prefill_tok_s = n_prefill / since(t0);

  // Decode: greedy steps after a short prompt, through the generation step
  // that `run` and the server use; 1, 4 and 8 sequences stepped together
  // (aggregate tok/s): one pass over each weight serves every row.
  say("decode %d tokens (1, 4, 8 sequences) ...\n", n_decode);
  double decode_tok_s = 0;
  nlohmann::json batched = nlohmann::json::array();
  // The bandwidth drifts with the neighbours: read it right before and after
  // the decode, and judge the decode against the highest reading.
  const int mem_reps = f.quick ? 2 : 4;
  const double mem_before = measure_read_bandwidth(pool, size_t(1) << 30, mem_reps);
  // Aggregate tok/s of n_seq sequences decoding n_decode tokens each after
  // prompts of prompt_len positions (prefilled together, untimed).
  auto decode_rate = [&](int n_seq, int prompt_len) {
    GenerateRequest req;
    req.max_new_tokens = n_decode + 1;  // the first token comes from the prefill
    std::vector<std::unique_ptr<KVCache>> caches;
    std::vector<std::unique_ptr<Sequence>> seqs;
    std::vector<Sequence*> live;
    for (int s = 0; s < n_seq; s++) {
      caches.push_back(std::make_unique<KVCache>(L, prompt_len + n_decode + 1, kv_dtype_for(ops.compute)));
      seqs.push_back(std::make_unique<Sequence>(nullptr, *caches.back(), req));
      std::vector<int32_t> p = random_text_ids(prompt_len, L.vocab_size, 10 + uint64_t(s));
      Tensor e = model.language().embed(std::vector<int>(p.begin(), p.end()));
      seqs.back()->set_prompt(e.f32(), prompt_len, L.hidden_size);
      live.push_back(seqs.back().get());
    }
    // The prompts, in the default chunks, all before the timed steps.
    auto prompt_left = [&] {
      for (const Sequence* q : live)
        if (q->pending_prompt_rows() > 0) return true;
      return false;
    };
    do step_sequences(model.language(), live, ops);
    while (prompt_left());
    t0 = std::chrono::steady_clock::now();
    int steps = 0;
    while (step_sequences(model.language(), live, ops) > 0) steps++;
    return double(n_seq) * (steps + 1) / since(t0);
  };
  for (int n_seq : {1, 4, 8}) {
    const double tok_s = decode_rate(n_seq, 16);
    if (n_seq == 1) decode_tok_s = tok_s;
    batched.push_back({{"sequences", n_seq}, {"tok_s", tok_s},
                       {"weight_bytes_per_step", linear_params_per_step(L, n_seq) * bytes_per_param}});
  }
  // Long context: the same decode after an image-sized prompt (a 640x480
  // image and a question: 1,032 positions), whose cache each step also reads.
  const int n_long = std::min(1032, L.max_position_embeddings - n_decode - 1);
  say("decode %d tokens after %d positions ...\n", n_decode, n_long);
  const double decode_long_tok_s = decode_rate(1, n_long);

  const double mem_after = measure_read_bandwidth(pool, size_t(1) << 30, mem_reps);
  const double mem_gbs = std::max({roof.mem_gbs, mem_before, mem_after});

  // Time to first token: decode + preprocess + vision + prefill of a 640x480
  // image and a 20-token question (the image arrives as pixels here).
  say("time to first token (640x480 image + 20-token question) ...\n");
  t0 = std::chrono::steady_clock::now();
  PreprocessResult img = preprocess_images({test_image(640, 480)}, model.processor(), CropMode::kAuto);
  const int image_token = model.image_token_id() >= 0 ? model.image_token_id() : L.vocab_size - 1;
  std::vector<int32_t> ids = {L.bos_token_id};
  std::vector<int32_t> q = random_text_ids(20, L.vocab_size, 2);
  ids.insert(ids.end(), img.num_image_tokens.as<int64_t>()[0], image_token);
  ids.insert(ids.end(), q.begin(), q.end());
  Tensor emb = model.embed_prompt(ids, image_token, &img, ops);
  {
    KVCache cache(L, int(ids.size()) + 1, kv_dtype_for(ops.compute));
    model.language().forward(emb.f32(), int(ids.size()), cache, ops, LogitsMode::kLast);
  }
  const double ttft_s = since(t0);
  const double rss_gb = peak_rss_gb();  // before a reference model is loaded

  Quality quality;
  if (!f.against.empty()) {
    say("quality against %s ...\n", f.against.c_str());
    const int n = 256;
    std::vector<int32_t> text = random_text_ids(n, L.vocab_size, 3);
    std::vector<int> ids_q(text.begin(), text.end());
    KVCache cache(L, n + 1, kv_dtype_for(ops.compute));
    Tensor e = model.language().embed(ids_q);
    Tensor logits = model.language().forward(e.f32(), n, cache, ops, LogitsMode::kAll);
    quality = measure_quality(logits, f.against, ids_q, ops);
  }

  const double decode_roof = mem_gbs * 1e9 / (double(cost.linear_params) * bytes_per_param);
  const double prefill_roof = compute_peak * 1e9 / cost.prefill_flops;
  const double vision_roof_s = vision_flops / (compute_peak * 1e9);
  nlohmann::ordered_json j;
  j["model"] = f.model;
  j["weights"] = wtype;
  j["compute"] = compute_name(compute);
  j["kernels"] = isa_name(ops.k->isa);
  j["threads"] = pool.size();
  j["roofline"] = {{"mem_gbs", mem_gbs},           {"mem_gbs_start", roof.mem_gbs},
                   {"mem_gbs_before_decode", mem_before}, {"mem_gbs_after_decode", mem_after},
                   {"triad_gbs", roof.triad_gbs},   {"bf16_gflops", roof.bf16_gflops},
                   {"int8_gops", roof.int8_gops},   {"f32_gflops", roof.f32_gflops}};
  j["load_s"] = load_s;
  j["vision_s_per_tile"] = vision_s_per_tile;
  j["prefill_tokens"] = n_prefill;
  j["prefill_tok_s"] = prefill_tok_s;
  j["decode_tokens"] = n_decode;
  j["decode_tok_s"] = decode_tok_s;
  j["decode_batched"] = batched;
  j["decode_long_context"] = {{"prompt_positions", n_long}, {"tok_s", decode_long_tok_s},
                              {"of_short", decode_long_tok_s / decode_tok_s}, {"kv_dtype", dtype_name(kv_dtype_for(ops.compute))}};
  j["ttft_s"] = ttft_s;
  j["ttft_image_tokens"] = img.num_image_tokens.as<int64_t>()[0];
  j["peak_rss_gb"] = rss_gb;
  j["fraction"] = {{"vision", vision_roof_s / vision_s_per_tile},
                   {"prefill", prefill_tok_s / prefill_roof},
                   {"decode", decode_tok_s / decode_roof}};
  j["roofline_rates"] = {{"vision_s_per_tile", vision_roof_s}, {"prefill_tok_s", prefill_roof}, {"decode_tok_s", decode_roof}};
  if (!f.against.empty())
    j["quality"] = {{"against", f.against}, {"tokens", quality.tokens}, {"top1_agreement", quality.top1},
                    {"mean_kl", quality.mean_kl}};
  if (f.json) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("model %s | weights %s | compute %s | kernels %s | %d threads\n", f.model.c_str(), wtype.c_str(),
              compute_name(compute), isa_name(ops.k->isa), pool.size());
  std::printf("roofline: memory %.1f GB/s (start %.1f, before decode %.1f, after %.1f; triad %.1f) | f32 %.0f GFLOP/s "
              "| bf16 %.0f GFLOP/s | int8 %.0f GOP/s\n",
              mem_gbs, roof.mem_gbs, mem_before, mem_after, roof.triad_gbs, roof.f32_gflops, roof.bf16_gflops,
              roof.int8_gops);
  std::printf("| workload | measured | roofline | fraction |\n|---|---|---|---|\n");
  std::printf("| vision s/tile | %.4g | %.4g | %.2f |\n", vision_s_per_tile, vision_roof_s, vision_roof_s / vision_s_per_tile);
  std::printf("| pp%d tok/s | %.1f | %.1f | %.2f |\n", n_prefill, prefill_tok_s, prefill_roof, prefill_tok_s / prefill_roof);
  std::printf("| tg%d tok/s | %.2f | %.2f | %.2f |\n", n_decode, decode_tok_s, decode_roof, decode_tok_s / decode_roof);
  for (const auto& b : batched)
    std::printf("| tg%d x %d sequences, aggregate tok/s | %.2f | | (%.2f GB of weights a step) |\n", n_decode,
                b["sequences"].get<int>(), b["tok_s"].get<double>(), b["weight_bytes_per_step"].get<double>() * 1e-9);
  std::printf("| tg%d after %d positions (%s KV cache) tok/s | %.2f | | %.2f of short |\n", n_decode, n_long,
              dtype_name(kv_dtype_for(ops.compute)), decode_long_tok_s, decode_long_tok_s / decode_tok_s);
  std::printf("| ttft 640x480 + 20 tokens (s) | %.2f | | |\n", ttft_s);
  std::printf("| peak RSS (GB) | %.2f | | |\n", rss_gb);
  if (!f.against.empty())
    std::printf("quality against %s over %d positions: top-1 agreement %.4f, mean KL %.5f\n", f.against.c_str(),
                quality.tokens, quality.top1, quality.mean_kl);
  return 0;
}

Command reg("bench", "Measure rooflines and model workloads (vision, prefill, decode, TTFT, RSS) in one run",
            [](CLI::App& app) {
              auto f = std::make_shared<BenchFlags>();
              app.add_option("-m,--model", f->model, "Checkpoint folder or .gguf")->required();
              app.add_flag("--quick", f->quick, "The same workloads, run fewer times");
              app.add_flag("--json", f->json, "Print one JSON object");
              app.add_option("-t,--threads", f->threads, "Threads (default: all cores)");
              app.add_option("--compute", f->compute, "bf16 (default) or f32");
              app.add_option("--against", f->against,
                             "Also report next-token top-1 agreement and mean KL against this checkpoint "
                             "(e.g. the BF16 folder a .gguf was quantized from) over a random-text prompt");
              return std::function<int()>([f] { return run_bench(*f); });
            });

}  // namespace
}  // namespace dsvl2::cli
