#include "model/quantize.h"

#include <sstream>

#include "core/error.h"
#include "core/file.h"
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

// Which part a tensor belongs to, or nullptr when it is never quantized.
const bool* part_flag(const std::string& n, const QuantizeParts& p) {
  if (n == "language.lm_head.weight") return &p.head;
  if (n.rfind("vision.blocks.", 0) == 0 && contains(n, ".weight") &&
      (contains(n, ".attn.qkv.") || contains(n, ".attn.proj.") || contains(n, ".mlp.fc")))
    return &p.vision;
  if (n.rfind("projector.layers.", 0) == 0 && contains(n, ".weight")) return &p.projector;
  if (n.rfind("language.model.layers.", 0) != 0 || !contains(n, ".weight")) return nullptr;
  if (contains(n, ".mlp.experts.")) return &p.experts;
  if (contains(n, ".mlp.shared_experts.")) return &p.shared;
  if (contains(n, ".mlp.gate_proj.") || contains(n, ".mlp.up_proj.") || contains(n, ".mlp.down_proj.")) return &p.dense;
  if (contains(n, ".self_attn.") && contains(n, "_proj") && !contains(n, "kv_b_proj")) return &p.attention;
  return nullptr;
}

}  // namespace

namespace {
// Decides one tensor's stored type: `target` (a block type, or kBF16 for
// none) for a chosen part whose rows are whole blocks, else its own type.
bool plan_type(const std::string& name, const Shape& shape, DType stored, GgmlType target, const QuantizeParts& parts,
               GgmlType* out, const std::string& where) {
  const bool* flag = part_flag(name, parts);
  if (target != GgmlType::kBF16 && flag && *flag && shape.size() == 2 && shape[1] % kQ8Block == 0) {
    *out = target;
    return true;
  }
  if (!ggml_type_of(stored, out))
    DSVL2_FAIL("%s: tensor \"%s\" has dtype %s, which GGUF cannot hold", where.c_str(), name.c_str(), dtype_name(stored));
  return false;
}
// "q8_0" | "q4_0" -> the block type; "bf16" -> kBF16 (no quantization).
GgmlType quant_target(const std::string& type) {
  if (type == "q8_0") return GgmlType::kQ8_0;
  if (type == "q4_0") return GgmlType::kQ4_0;
  if (type == "bf16") return GgmlType::kBF16;
  DSVL2_FAIL("--type \"%s\": supported types are q8_0, q4_0 and bf16", type.c_str());
}
DType block_dtype(GgmlType t) { return t == GgmlType::kQ4_0 ? DType::kQ4_0 : DType::kQ8_0; }
}  // namespace

QuantizeStats write_random_gguf(const std::string& out_path, const std::string& config_json, uint64_t seed,
                                ThreadPool* pool, const std::string& type) {
  const GgmlType target = quant_target(type);
  DSVL2_REQUIRE(target != GgmlType::kBF16, "write_random_gguf: type must be q8_0 or q4_0");
  const DType qd = block_dtype(target);
  VLConfig cfg = parse_vl_config(config_json, out_path + " (config)");
  std::vector<TensorSpec> specs = expected_tensors(cfg);
  std::vector<GgufWriter::Entry> entries;
  std::vector<bool> quantized;
  QuantizeStats st;
  for (const TensorSpec& s : specs) {
    GgmlType t;
    quantized.push_back(plan_type(s.name, s.shape, DType::kBF16, target, {}, &t, out_path));
    entries.push_back({s.name, t, s.shape});
    st.tensors++;
    st.quantized += quantized.back();
    st.bytes_in += uint64_t(shape_numel(s.shape)) * 2;
  }
  GgufMetadata md(out_path);
  add_dsvl2_metadata(md, "DeepSeek-VL2 random (" + type + ")", config_json, processor_config_json(),
                     gguf_file_type(target), true);
  GgufWriter w(out_path, md, entries);
  // Blocks are 32 consecutive elements of a row and rows are whole blocks,
  // so a flat chunk of the tensor quantizes on its own.
  constexpr int64_t kChunk = 64 * kRandomBlock;
  std::vector<uint16_t> bf;
  std::vector<float> f;
  std::vector<uint8_t> blocks;
  for (size_t i = 0; i < specs.size(); i++) {
    const int64_t n = shape_numel(specs[i].shape);
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
      quantize_blocks(qd, f.data(), count, blocks.data());
      w.write(blocks.data(), blocks.size());
    }
    st.bytes_out += w.tensor_bytes(i);
  }
  w.close();
  return st;
}

QuantizeParts parse_quantize_parts(const std::string& list) {
  if (list.empty() || list == "language") return {};
  QuantizeParts p{false, false, false, false, false, false, false};
  if (list == "all") return {true, true, true, true, true, true, true};
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item == "experts") p.experts = true;
    else if (item == "shared") p.shared = true;
    else if (item == "dense") p.dense = true;
    else if (item == "attention") p.attention = true;
    else if (item == "head") p.head = true;
    else if (item == "vision") p.vision = true;
    else if (item == "projector") p.projector = true;
    else if (item == "language") p.experts = p.shared = p.dense = p.attention = p.head = true;
    else
      DSVL2_FAIL("--parts: unknown part \"%s\" (experts, shared, dense, attention, head, vision, projector, "
                 "language or all)", item.c_str());
  }
  return p;
}

QuantizeStats quantize_checkpoint(const std::string& dir, const std::string& type, const QuantizeParts& parts,
                                  const std::string& out_path) {
  const GgmlType target = quant_target(type);
  const bool quantizing = target != GgmlType::kBF16;
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
    const bool quantize = plan_type(s.name, s.shape, v.dtype, target, parts, &t, ckpt.file_of(s.name));
    plan.push_back({s.name, v, quantize});
    entries.push_back({s.name, t, v.shape});
    st.tensors++;
    st.quantized += quantize;
    st.bytes_in += v.nbytes;
  }
  GgufMetadata md(out_path);
  add_dsvl2_metadata(md, "DeepSeek-VL2 (" + type + ")", config_json, proc_json, gguf_file_type(target), quantizing);
  GgufWriter w(out_path, md, entries);
  const DType qd = block_dtype(target);
  std::vector<uint8_t> blocks;
  for (size_t i = 0; i < plan.size(); i++) {
    const Plan& p = plan[i];
    if (!p.quantize) {
      w.write(p.view.data, p.view.nbytes);
      st.bytes_out += p.view.nbytes;
      continue;
    }
    // Row by row: widen to f32 (exact for BF16), quantize, append.
    const int64_t rows = p.view.shape[0], cols = p.view.shape[1];
    blocks.resize(size_t(cols / kQ8Block) * dtype_block_bytes(qd));
    const size_t es = p.view.nbytes / size_t(rows * cols);
    for (int64_t r = 0; r < rows; r++) {
      TensorView rv{p.view.dtype, {cols}, static_cast<const uint8_t*>(p.view.data) + size_t(r * cols) * es,
                    size_t(cols) * es};
      Tensor f = to_f32(rv);
      quantize_blocks(qd, f.f32(), cols, blocks.data());
      w.write(blocks.data(), blocks.size());
    }
    st.bytes_out += w.tensor_bytes(i);
  }
  w.close();
  return st;
}

}  // namespace dsvl2
