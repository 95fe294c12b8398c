#include "model/quantize.h"

#include <algorithm>
#include <sstream>

#include "core/error.h"
#include "core/file.h"
#include "core/thread_pool.h"
#include "io/checkpoint.h"
#include "io/gguf.h"
#include "io/gguf_dsvl2.h"
#include "io/model_config.h"
#include "io/random_checkpoint.h"
#include "io/tensor_registry.h"
#include "ops/quant.h"

namespace dsvl2 {

namespace {

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

enum class Part { kNone, kExperts, kShared, kDense, kAttention, kHead, kEmbed, kVision, kProjector };

// Which part a tensor belongs to; kNone when it is never quantized.
Part part_of(const std::string& n) {
  if (n == "language.lm_head.weight") return Part::kHead;
  if (n == "language.model.embed_tokens.weight") return Part::kEmbed;
  if (n.rfind("vision.blocks.", 0) == 0 && contains(n, ".weight") &&
      (contains(n, ".attn.qkv.") || contains(n, ".attn.proj.") || contains(n, ".mlp.fc")))
    return Part::kVision;
  if (n.rfind("projector.layers.", 0) == 0 && contains(n, ".weight")) return Part::kProjector;
  if (n.rfind("language.model.layers.", 0) != 0 || !contains(n, ".weight")) return Part::kNone;
  if (contains(n, ".mlp.experts.")) return Part::kExperts;
  if (contains(n, ".mlp.shared_experts.")) return Part::kShared;
  if (contains(n, ".mlp.gate_proj.") || contains(n, ".mlp.up_proj.") || contains(n, ".mlp.down_proj."))
    return Part::kDense;
  if (contains(n, ".self_attn.") && contains(n, "_proj") && !contains(n, "kv_b_proj")) return Part::kAttention;
  return Part::kNone;
}

bool chosen(Part p, const QuantizeParts& q) {
  switch (p) {
    case Part::kExperts: return q.experts;
    case Part::kShared: return q.shared;
    case Part::kDense: return q.dense;
    case Part::kAttention: return q.attention;
    case Part::kHead: return q.head;
    case Part::kEmbed: return q.embed;
    case Part::kVision: return q.vision;
    case Part::kProjector: return q.projector;
    case Part::kNone: break;
  }
  return false;
}

// The block type --type gives each part: one type everywhere, or the q4_m
// mix: the routed experts (most of the weights; a token reads 6 of 64-72 and
// averages their outputs) and lm_head (a third of the bytes a Tiny decode
// step reads at Q8_0) in IQ4_NL, every other matrix in Q8_0. On Tiny's real
// dimensions the experts alone in IQ4_NL measured a mean KL of 0.043 against
// BF16, lm_head alone 0.017; with the shared experts and dense MLP in IQ4_NL
// too, 0.35 for 1.7 % less file (docs/performance.md). `experts` names the
// file's type (general.file_type, as llama.cpp names a mix by its main type);
// kBF16 for "bf16", which quantizes nothing. Every type stores the embedding
// table in Q8_0: a token reads one row of it, so its precision costs file
// size, never decode time, and 4-bit rows measurably perturbed every prompt.
struct Recipe {
  GgmlType experts = GgmlType::kBF16, head = GgmlType::kBF16, other = GgmlType::kBF16;
  GgmlType of(Part p) const {
    switch (p) {
      case Part::kExperts: return experts;
      case Part::kHead: return head;
      case Part::kEmbed: return GgmlType::kQ8_0;
      default: return other;
    }
  }
};

Recipe recipe_of(const std::string& type) {
  if (type == "q8_0") return {GgmlType::kQ8_0, GgmlType::kQ8_0, GgmlType::kQ8_0};
  if (type == "q4_0") return {GgmlType::kQ4_0, GgmlType::kQ4_0, GgmlType::kQ4_0};
  if (type == "iq4_nl") return {GgmlType::kIQ4_NL, GgmlType::kIQ4_NL, GgmlType::kIQ4_NL};
  if (type == "q4_m") return {GgmlType::kIQ4_NL, GgmlType::kIQ4_NL, GgmlType::kQ8_0};
  if (type == "bf16") return {};
  DSVL2_FAIL("--type \"%s\": supported types are q4_m, q8_0, q4_0, iq4_nl and bf16", type.c_str());
}

// Decides one tensor's stored type: the recipe's block type for a chosen part
// whose rows are whole 32-element blocks, else its own type.
bool plan_type(const std::string& name, const Shape& shape, DType stored, const Recipe& recipe,
               const QuantizeParts& parts, GgmlType* out, const std::string& where) {
  const Part part = part_of(name);
  if (recipe.experts != GgmlType::kBF16 && chosen(part, parts) && shape.size() == 2 && shape[1] % kQ8Block == 0) {
    *out = recipe.of(part);
    return true;
  }
  if (!ggml_type_of(stored, out))
    DSVL2_FAIL("%s: tensor \"%s\" has dtype %s, which GGUF cannot hold", where.c_str(), name.c_str(), dtype_name(stored));
  return false;
}

// n f32 values (a multiple of 32) into qd's blocks, spread over the pool:
// blocks are independent, so the bytes do not depend on the thread count.
void quantize_parallel(DType qd, const float* f, int64_t n, uint8_t* out, ThreadPool* pool) {
  const int64_t nb = n / kQ8Block;
  const size_t bb = dtype_block_bytes(qd);
  auto run = [&](int64_t b0, int64_t b1, int) {
    quantize_blocks(qd, f + b0 * kQ8Block, (b1 - b0) * kQ8Block, out + size_t(b0) * bb);
  };
  if (pool) pool->parallel_for(nb, run, 256);
  else run(0, nb, 0);
}

}  // namespace

QuantizeStats write_random_gguf(const std::string& out_path, const std::string& config_json, uint64_t seed,
                                ThreadPool* pool, const std::string& type) {
  const Recipe recipe = recipe_of(type);
  DSVL2_REQUIRE(recipe.experts != GgmlType::kBF16, "write_random_gguf: type must be a quantized type, not bf16");
  VLConfig cfg = parse_vl_config(config_json, out_path + " (config)");
  std::vector<TensorSpec> specs = expected_tensors(cfg);
  std::vector<GgufWriter::Entry> entries;
  std::vector<bool> quantized;
  QuantizeStats st;
  for (const TensorSpec& s : specs) {
    GgmlType t;
    quantized.push_back(plan_type(s.name, s.shape, DType::kBF16, recipe, {}, &t, out_path));
    entries.push_back({s.name, t, s.shape});
    st.tensors++;
    st.quantized += quantized.back();
    st.bytes_in += uint64_t(shape_numel(s.shape)) * 2;
  }
  GgufMetadata md(out_path);
  add_dsvl2_metadata(md, "DeepSeek-VL2 random (" + type + ")", config_json, processor_config_json(),
                     gguf_file_type(recipe.experts), true);
  GgufWriter w(out_path, md, entries);
  // Blocks are 32 consecutive elements of a row and rows are whole blocks,
  // so a flat chunk of the tensor quantizes on its own.
  constexpr int64_t kChunk = 64 * kRandomBlock;
  std::vector<uint16_t> bf;
  std::vector<float> f;
  std::vector<uint8_t> blocks;
  for (size_t i = 0; i < specs.size(); i++) {
    const int64_t n = shape_numel(specs[i].shape);
    const DType qd = ggml_type_info(entries[i].type).dtype;
    for (int64_t first = 0; first < n; first += kChunk) {
      const int64_t count = std::min(kChunk, n - first);
      bf.resize(size_t(count));
      random_tensor_chunk(cfg, specs[i], i, seed, first, count, bf.data(), pool);
      if (!quantized[i]) {
        w.write(bf.data(), size_t(count) * 2);
        continue;
      }
      f.resize(size_t(count));
      for (int64_t k = 0; k < count; k++) f[size_t(k)] = bf16_to_f32(bf[size_t(k)]);
      blocks.resize(size_t(count / kQ8Block) * dtype_block_bytes(qd));
      quantize_parallel(qd, f.data(), count, blocks.data(), pool);
      w.write(blocks.data(), blocks.size());
    }
    st.bytes_out += w.tensor_bytes(i);
  }
  w.close();
  return st;
}

QuantizeParts parse_quantize_parts(const std::string& list) {
  if (list.empty() || list == "language") return {};
  QuantizeParts p{false, false, false, false, false, false, false, false};
  if (list == "all") return {true, true, true, true, true, true, true, true};
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item == "experts") p.experts = true;
    else if (item == "shared") p.shared = true;
    else if (item == "dense") p.dense = true;
    else if (item == "attention") p.attention = true;
    else if (item == "head") p.head = true;
    else if (item == "embed") p.embed = true;
    else if (item == "vision") p.vision = true;
    else if (item == "projector") p.projector = true;
    else if (item == "language") p.experts = p.shared = p.dense = p.attention = p.head = p.embed = true;
    else
      DSVL2_FAIL("--parts: unknown part \"%s\" (experts, shared, dense, attention, head, embed, vision, "
                 "projector, language or all)", item.c_str());
  }
  return p;
}

QuantizeStats quantize_checkpoint(const std::string& dir, const std::string& type, const QuantizeParts& parts,
                                  const std::string& out_path, ThreadPool* pool) {
  const Recipe recipe = recipe_of(type);
  const bool quantizing = recipe.experts != GgmlType::kBF16;
  const std::string config_json = read_file(path_join(dir, "config.json"));
  const std::string proc_path = path_join(dir, "processor_config.json");
  const std::string proc_json = file_exists(proc_path) ? read_file(proc_path) : "{}";
  VLConfig cfg = parse_vl_config(config_json, path_join(dir, "config.json"));
  Checkpoint ckpt(dir);
  validate_checkpoint(ckpt, cfg);

  struct Plan {
    std::string name;
    TensorView view;
    bool quantize;
  };
  std::vector<Plan> plan;
  std::vector<GgufWriter::Entry> entries;
  QuantizeStats st;
  for (const TensorSpec& s : expected_tensors(cfg)) {
    TensorView v;
    if (!ckpt.get(s.name, s.shape, &v)) continue;  // optional and absent
    GgmlType t;
    const bool quantize = plan_type(s.name, s.shape, v.dtype, recipe, parts, &t, ckpt.file_of(s.name));
    plan.push_back({s.name, v, quantize});
    entries.push_back({s.name, t, v.shape});
    st.tensors++;
    st.quantized += quantize;
    st.bytes_in += v.nbytes;
  }
  GgufMetadata md(out_path);
  add_dsvl2_metadata(md, "DeepSeek-VL2 (" + type + ")", config_json, proc_json, gguf_file_type(recipe.experts),
                     quantizing);
  GgufWriter w(out_path, md, entries);
  std::vector<uint8_t> blocks;
  for (size_t i = 0; i < plan.size(); i++) {
    const Plan& p = plan[i];
    if (!p.quantize) {
      w.write(p.view.data, p.view.nbytes);
      st.bytes_out += p.view.nbytes;
      continue;
    }
    // A few MB of rows at a time: widen to f32 (exact for BF16), quantize, append.
    const DType qd = ggml_type_info(entries[i].type).dtype;
    const int64_t rows = p.view.shape[0], cols = p.view.shape[1];
    const int64_t batch = std::max<int64_t>(1, (int64_t(1) << 22) / cols);
    const size_t es = p.view.nbytes / size_t(rows * cols);
    for (int64_t r = 0; r < rows; r += batch) {
      const int64_t n = std::min(batch, rows - r) * cols;
      const uint8_t* first = static_cast<const uint8_t*>(p.view.data) + size_t(r * cols) * es;
      TensorView rv{p.view.dtype, {n}, first, size_t(n) * es};
      Tensor f = to_f32(rv);
      blocks.resize(size_t(n / kQ8Block) * dtype_block_bytes(qd));
      quantize_parallel(qd, f.f32(), n, blocks.data(), pool);
      w.write(blocks.data(), blocks.size());
    }
    st.bytes_out += w.tensor_bytes(i);
  }
  w.close();
  return st;
}

}  // namespace dsvl2
