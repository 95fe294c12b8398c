// SigLIP tower throughput at the released models' dimensions (SigLIP-SO400M:
// 27 layers, width 1152, 16 heads, MLP 4304, 384x384 tiles of 729 tokens) with
// random BF16 weights made in memory, in both numeric modes. Prints seconds per
// tile and the fraction of the machine's peak, measured in the run (the
// roofline of `dsvl2 bench`) unless --peak-bf16 / --peak-f32 (GFLOP/s) give it.
//
//   bench_vision [--quick] [--breakdown] [--tiles N] [--layers L] [--threads T] [--reps R]
//                [--mode f32|bf16|both]
//
// --quick times the patch embedding alone and then one block, and extrapolates
// to the full depth (the scalar reference kernels take minutes per full tile).
// Each figure is the best of R runs (default 3 with --quick, else 1).
// --breakdown times each matmul of one block and the attention separately.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <sys/resource.h>

#include "core/dtype.h"
#include "core/error.h"
#include "core/heap.h"
#include "core/thread_pool.h"
#include "ops/ops.h"
#include "ops/roofline.h"
#include "vision/siglip.h"

namespace dsvl2 {
namespace {

struct Rng {
  uint64_t s = 0x9E3779B97F4A7C15ull;
  float uniform() {  // [-1, 1)
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return float((s >> 40) & 0xFFFFFF) / float(1 << 23) - 1.f;
  }
};

// Owns the random BF16 matrices; every block views the same bytes, which keeps
// memory small without changing the work (one block's weights already exceed the caches).
struct RandomWeights {
  std::vector<std::vector<uint16_t>> mats;
  Rng rng;
  Weight make(int64_t rows, int64_t cols, float scale) {
    mats.emplace_back(size_t(rows * cols));
    for (uint16_t& v : mats.back()) v = f32_to_bf16(rng.uniform() * scale);
    return Weight{DType::kBF16, rows, cols, mats.back().data()};
  }
  Tensor vec(int64_t n, float base, float scale) {
    Tensor t = Tensor::f32({n});
    for (int64_t i = 0; i < n; i++) t.f32()[i] = base + rng.uniform() * scale;
    return t;
  }
};

VisionTower random_tower(const VisionConfig& cfg, RandomWeights& rw) {
  const int64_t W = cfg.width, F = cfg.mlp_hidden(), P = cfg.patch_size, T = int64_t(cfg.grid()) * cfg.grid();
  VisionWeights w;
  w.patch = rw.make(W, 3 * P * P, 0.04f);
  w.patch_b = rw.vec(W, 0.f, 0.02f);
  w.pos_embed = rw.vec(T * W, 0.f, 0.02f);
  Weight qkv = rw.make(3 * W, W, 0.03f), proj = rw.make(W, W, 0.03f);
  Weight fc1 = rw.make(F, W, 0.03f), fc2 = rw.make(W, F, 0.015f);
  for (int l = 0; l < cfg.layers; l++) {
    VisionBlockWeights b;
    b.norm1_w = rw.vec(W, 1.f, 0.1f);
    b.norm1_b = rw.vec(W, 0.f, 0.1f);
    b.qkv = qkv;
    b.qkv_b = rw.vec(3 * W, 0.f, 0.02f);
    b.proj = proj;
    b.proj_b = rw.vec(W, 0.f, 0.02f);
    b.norm2_w = rw.vec(W, 1.f, 0.1f);
    b.norm2_b = rw.vec(W, 0.f, 0.1f);
    b.fc1 = fc1;
    b.fc1_b = rw.vec(F, 0.f, 0.02f);
    b.fc2 = fc2;
    b.fc2_b = rw.vec(W, 0.f, 0.02f);
    w.blocks.push_back(std::move(b));
  }
  w.norm_w = rw.vec(W, 1.f, 0.1f);
  w.norm_b = rw.vec(W, 0.f, 0.1f);
  return VisionTower(cfg, std::move(w));
}

double cpu_seconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

struct Timing {
  double wall = 0, cpu = 0;  // cpu: all threads together (shows contention on a shared machine)
};

Timing time_of(const std::function<void()>& fn) {
  const double c0 = cpu_seconds();
  auto t0 = std::chrono::steady_clock::now();
  fn();
  auto t1 = std::chrono::steady_clock::now();
  return {std::chrono::duration<double>(t1 - t0).count(), cpu_seconds() - c0};
}

// Best of `reps` runs (the machine may be shared; the minimum is the least disturbed).
Timing best_of(int reps, const std::function<void()>& fn) {
  Timing best = time_of(fn);
  for (int i = 1; i < reps; i++) {
    Timing t = time_of(fn);
    if (t.wall < best.wall) best = t;
  }
  return best;
}

Timing encode_time(const VisionTower& tower, const Tensor& pixels, const Ops& ops, VisionScratch& scratch, int reps) {
  return best_of(reps, [&] {
    Tensor out = tower.encode(pixels, ops, &scratch);
    volatile float sink = out.f32()[0];
    (void)sink;
  });
}

// One block's pieces at M = tiles * 729, to see where the time goes.
void breakdown(const VisionTower& one_block, int64_t tiles, const Ops& ops, int reps) {
  const VisionConfig& c = one_block.config();
  const int64_t T = one_block.tokens_per_tile(), M = tiles * T, W = c.width, F = c.mlp_hidden();
  RandomWeights rw;
  Tensor x = Tensor::f32({M, std::max<int64_t>(F, 3 * W)}), y = Tensor::f32({M, std::max<int64_t>(F, 3 * W)});
  Rng r;
  for (int64_t i = 0; i < x.numel(); i++) x.f32()[i] = r.uniform();
  struct Mm {
    const char* name;
    int64_t n, k;
  } mms[] = {{"qkv", 3 * W, W}, {"proj", W, W}, {"fc1", F, W}, {"fc2", W, F}};
  for (const Mm& m : mms) {
    Weight w = rw.make(m.n, m.k, 0.03f);
    Timing t = best_of(reps, [&] { ops.linear(x.f32(), M, w, nullptr, y.f32()); });
    std::printf("    %-9s [%lld x %lld] . [%lld]^T  %8.3f s wall  %7.2f GFLOP/s\n", m.name, (long long)M,
                (long long)m.k, (long long)m.n, t.wall, 2.0 * M * m.n * m.k / t.wall * 1e-9);
  }
  AttentionArgs a;
  a.q = x.f32();
  a.k = x.f32() + W;
  a.v = x.f32() + 2 * W;
  a.q_stride_t = a.k_stride_s = a.v_stride_s = 3 * W;
  a.q_stride_h = a.k_stride_h = a.v_stride_h = a.o_stride_h = c.head_dim();
  a.out = y.f32();
  a.o_stride_t = W;
  a.T = a.S = int(T);
  a.H = a.Hkv = c.heads;
  a.Dk = a.Dv = c.head_dim();
  a.scale = 0.1f;
  a.compute = ops.compute;  // as VisionTower::block_forward
  Timing t = best_of(reps, [&] {
    for (int64_t i = 0; i < tiles; i++) ops.attention(a);
  });
  std::printf("    %-9s %lld x [%lld x %lld, %d heads]  %8.3f s wall  %7.2f GFLOP/s\n", "attention", (long long)tiles,
              (long long)T, (long long)T, c.heads, t.wall, 4.0 * tiles * T * T * W / t.wall * 1e-9);
}

int run(int argc, char** argv) {
  bool quick = false, show_breakdown = false;
  int tiles = 1, threads = 0, reps = 0;
  std::string mode = "both";
  double peak_bf16 = 0, peak_f32 = 0;  // GFLOP/s; 0: measured below
  VisionConfig cfg;  // defaults = SigLIP-SO400M at 384
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) DSVL2_FAIL("%s needs a value", a.c_str());
      return argv[++i];
    };
    if (a == "--quick") quick = true;
    else if (a == "--breakdown") show_breakdown = true;
    else if (a == "--tiles") tiles = std::atoi(next().c_str());
    else if (a == "--layers") cfg.layers = std::atoi(next().c_str());
    else if (a == "--reps") reps = std::atoi(next().c_str());
    else if (a == "--threads") threads = std::atoi(next().c_str());
    else if (a == "--mode") mode = next();
    else if (a == "--peak-bf16") peak_bf16 = std::atof(next().c_str());
    else if (a == "--peak-f32") peak_f32 = std::atof(next().c_str());
    else DSVL2_FAIL("unknown option %s (see the comment at the top of bench_vision.cpp)", a.c_str());
  }
  DSVL2_REQUIRE(tiles >= 1 && cfg.layers >= 1, "--tiles and --layers must be >= 1");
  const int full_layers = cfg.layers;
  if (reps <= 0) reps = quick ? 3 : 1;

  ThreadPool pool(threads);
  const KernelTable& k = kernels_best();
  if (peak_bf16 <= 0 || peak_f32 <= 0) {
    const Roofline roof = measure_roofline(pool, true);
    if (peak_bf16 <= 0) peak_bf16 = roof.bf16_gflops;
    if (peak_f32 <= 0) peak_f32 = roof.f32_gflops;
  }
  RandomWeights rw;
  Rng prng{12345};
  Tensor pixels = Tensor::f32({tiles, 3, cfg.image_size, cfg.image_size});
  for (int64_t i = 0; i < pixels.numel(); i++) pixels.f32()[i] = prng.uniform();

  VisionConfig full = cfg, embed_only = cfg, one = cfg;
  embed_only.layers = 0;
  one.layers = 1;
  const VisionTower tower_full = random_tower(quick ? one : full, rw);
  const VisionTower tower_embed = random_tower(embed_only, rw);
  const double embed_flops = tower_embed.flops_per_tile();
  const double layer_flops = (tower_full.flops_per_tile() - embed_flops) / tower_full.config().layers;
  const double tile_flops = embed_flops + full_layers * layer_flops;

  std::printf("SigLIP tower: %d layers, width %d, heads %d, mlp %d, %d tokens/tile; %d tile(s); %s kernels, %d threads\n",
              full_layers, cfg.width, cfg.heads, cfg.mlp_hidden(), cfg.grid() * cfg.grid(), tiles, isa_name(k.isa),
              pool.size());
  std::printf("work: %.3f TFLOP per tile%s\n", tile_flops * 1e-12,
              quick ? " (--quick: 1 block timed, extrapolated to full depth)" : "");

  for (Compute c : {Compute::kF32, Compute::kBF16}) {
    if (mode != "both" && mode != compute_name(c)) continue;
    Ops ops{&k, &pool, c};
    VisionScratch scratch;
    scratch.reserve(int64_t(tiles) * tower_full.tokens_per_tile(), cfg);  // not part of the timing
    Timing tm;
    if (quick) {
      Timing t_embed = encode_time(tower_embed, pixels, ops, scratch, reps);
      Timing t_one = encode_time(tower_full, pixels, ops, scratch, reps);
      tm.wall = t_embed.wall + full_layers * std::max(0.0, t_one.wall - t_embed.wall);
      tm.cpu = t_embed.cpu + full_layers * std::max(0.0, t_one.cpu - t_embed.cpu);
    } else {
      tm = encode_time(tower_full, pixels, ops, scratch, reps);
    }
    const double per_tile = tm.wall / tiles;
    const double gflops = tile_flops / per_tile * 1e-9;
    const double peak = c == Compute::kBF16 ? peak_bf16 : peak_f32;
    std::printf("%-5s %10.3f s/tile  %8.2f GFLOP/s  %6.2f%% of %.0f GFLOP/s peak  (cpu %.3f s/tile over %d threads)\n",
                compute_name(c), per_tile, gflops, peak > 0 ? 100.0 * gflops / peak : 0.0, peak, tm.cpu / tiles,
                pool.size());
    if (show_breakdown) breakdown(tower_full, tiles, ops, reps);
  }
  return 0;
}

}  // namespace
}  // namespace dsvl2

int main(int argc, char** argv) {
  dsvl2::keep_freed_activations();  // as the dsvl2 command
  try {
    return dsvl2::run(argc, argv);
  } catch (const dsvl2::Error& e) {
    std::fprintf(stderr, "bench_vision: %s\n", e.what());
    return 1;
  }
}
