// Run-time ISA choice and numeric-mode names.
#include <cpuid.h>

#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "core/scratch.h"
#include "ops/ops.h"

namespace dsvl2 {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "?";
}

const char* compute_name(Compute c) { return c == Compute::kF32 ? "f32" : "bf16"; }

bool parse_compute(const std::string& s, Compute* out) {
  if (s == "f32") *out = Compute::kF32;
  else if (s == "bf16") *out = Compute::kBF16;
  else return false;
  return true;
}

Weight weight_from_view(const TensorView& v) {
  DSVL2_CHECK(v.shape.size() == 2, "weight must be 2-D, got %s", shape_str(v.shape).c_str());
  return Weight{v.dtype, v.shape[0], v.shape[1], v.data};
}

Weight Ops::prepare(const Weight& w, Tensor* storage) const {
  if (!k->prepare) return w;
  const size_t bytes = k->prepare(w, compute, nullptr, nullptr);
  if (bytes == 0) return w;
  *storage = Tensor(DType::kU8, {int64_t(bytes)});
  Weight out = w;
  k->prepare(w, compute, storage->data(), &out);
  return out;
}

Weight Ops::prepare_into(const Weight& w, void* dst) const {
  Weight out = w;
  if (k->prepare && k->prepare(w, compute, nullptr, nullptr) > 0) k->prepare(w, compute, dst, &out);
  return out;
}

void Ops::gelu_tanh_linear(float* x, int64_t M, int64_t K, const Weight& w, const float* bias, float* y) const {
  if (compute == Compute::kBF16 && w.dtype == DType::kBF16 && k->gelu_tanh_bf16 && k->matmul_bf16) {
    thread_local ScratchBuffer buf;  // the bf16 rows, reused across calls
    const int64_t ld = (K + 1) & ~int64_t(1);
    uint16_t* xb = static_cast<uint16_t*>(buf.get(size_t(M * ld) * 2));
    k->gelu_tanh_bf16(x, M, K, xb, ld, *pool);
    return k->matmul_bf16(xb, ld, M, w, bias, y, *pool);
  }
  pool->parallel_for(M * K, [&](int64_t a, int64_t b, int) { k->gelu_tanh(x + a, b - a); }, 1 << 14);
  linear(x, M, w, bias, y);
}

namespace {
uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t(edx) << 32) | eax;
}
bool os_saves(uint64_t mask) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return false;  // OSXSAVE
  return (xgetbv0() & mask) == mask;
}
}  // namespace

bool cpu_has_avx2_fma() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  bool fma = c & (1u << 12), f16c = c & (1u << 29);
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  bool avx2 = b & (1u << 5);
  return fma && f16c && avx2 && os_saves(0x6);  // XMM | YMM state
}

bool cpu_has_avx512_bf16() {
  if (!cpu_has_avx2_fma()) return false;
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  bool f = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30), vl = b & (1u << 31);
  bool vnni = c & (1u << 11);
  unsigned a1, b1, c1, d1;
  if (!__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) return false;
  bool bf16 = a1 & (1u << 5);
  return f && dq && bw && vl && vnni && bf16 && os_saves(0xe6);  // + opmask, ZMM state
}

const KernelTable* kernels_for(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return &kernels_ref();
    case Isa::kAvx2: return cpu_has_avx2_fma() ? kernels_avx2() : nullptr;
    case Isa::kAvx512: return cpu_has_avx512_bf16() ? kernels_avx512() : nullptr;
  }
  return nullptr;
}

const KernelTable& kernels_best() {
  if (const char* env = std::getenv("DSVL2_ISA"); env && *env) {
    Isa isa;
    if (!std::strcmp(env, "scalar")) isa = Isa::kScalar;
    else if (!std::strcmp(env, "avx2")) isa = Isa::kAvx2;
    else if (!std::strcmp(env, "avx512")) isa = Isa::kAvx512;
    else throw Error(strformat("DSVL2_ISA=%s: expected scalar, avx2 or avx512", env));
    const KernelTable* t = kernels_for(isa);
    if (!t) throw Error(strformat("DSVL2_ISA=%s: not supported by this CPU or build", env));
    return *t;
  }
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2})
    if (const KernelTable* t = kernels_for(isa)) return *t;
  return kernels_ref();
}

}  // namespace dsvl2
