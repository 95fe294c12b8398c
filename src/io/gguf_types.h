// The ggml tensor types a GGUF file may declare: id, name, block size and bytes
// per block, in one table shared by the GGUF reader/writer, the quantizer and
// the kernels. Header-only so any module can use it without a link edge.
//
// Sizes follow ggml's block structs (ggml/src/ggml-common.h static_asserts,
// QK_K = 256). Ids 4, 5 (Q4_2, Q4_3), 31-33 (Q4_0_4_4/4_8/8_8) and 36-38
// (IQ4_NL_4_4/4_8/8_8) were removed from the format and are rejected, as is
// anything at or above kCount.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace dsvl2 {

enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,
  kNVFP4 = 40,
  kQ1_0 = 41,
  kQ2_0 = 42,
  kCount = 43,
};

struct GgmlTypeInfo {
  GgmlType type;
  const char* name;      // ggml's type_name
  uint32_t block_elems;  // elements per block (ggml blck_size)
  uint32_t block_bytes;  // bytes per block (ggml type_size)
  bool has_dtype;        // representable as a DType (dtype below is meaningful)
  DType dtype;
};

// clang-format off
inline constexpr GgmlTypeInfo kGgmlTypes[] = {
    {GgmlType::kF32,     "f32",      1,   4,   true,  DType::kF32},
    {GgmlType::kF16,     "f16",      1,   2,   true,  DType::kF16},
    {GgmlType::kQ4_0,    "q4_0",     32,  18,  true,  DType::kQ4_0},   // f16 d + 16 B nibbles
    {GgmlType::kQ4_1,    "q4_1",     32,  20,  false, DType::kU8},     // f16 d, m + 16 B
    {GgmlType::kQ5_0,    "q5_0",     32,  22,  false, DType::kU8},     // f16 d + u32 qh + 16 B
    {GgmlType::kQ5_1,    "q5_1",     32,  24,  false, DType::kU8},
    {GgmlType::kQ8_0,    "q8_0",     32,  34,  true,  DType::kQ8_0},   // f16 d + 32 int8
    {GgmlType::kQ8_1,    "q8_1",     32,  36,  false, DType::kU8},
    {GgmlType::kQ2_K,    "q2_K",     256, 84,  false, DType::kU8},
    {GgmlType::kQ3_K,    "q3_K",     256, 110, false, DType::kU8},
    {GgmlType::kQ4_K,    "q4_K",     256, 144, true,  DType::kQ4_K},   // 2 f16 + 12 B scales + 128 B
    {GgmlType::kQ5_K,    "q5_K",     256, 176, false, DType::kU8},
    {GgmlType::kQ6_K,    "q6_K",     256, 210, true,  DType::kQ6_K},   // 128 + 64 + 16 B + f16 d
    {GgmlType::kQ8_K,    "q8_K",     256, 292, true,  DType::kQ8_K},   // f32 d + 256 int8 + 16 int16
    {GgmlType::kIQ2_XXS, "iq2_xxs",  256, 66,  false, DType::kU8},
    {GgmlType::kIQ2_XS,  "iq2_xs",   256, 74,  false, DType::kU8},
    {GgmlType::kIQ3_XXS, "iq3_xxs",  256, 98,  false, DType::kU8},
    {GgmlType::kIQ1_S,   "iq1_s",    256, 50,  false, DType::kU8},
    {GgmlType::kIQ4_NL,  "iq4_nl",   32,  18,  true,  DType::kIQ4_NL}, // f16 d + 16 B grid indices
    {GgmlType::kIQ3_S,   "iq3_s",    256, 110, false, DType::kU8},
    {GgmlType::kIQ2_S,   "iq2_s",    256, 82,  false, DType::kU8},
    {GgmlType::kIQ4_XS,  "iq4_xs",   256, 136, false, DType::kU8},
    {GgmlType::kI8,      "i8",       1,   1,   true,  DType::kI8},
    {GgmlType::kI16,     "i16",      1,   2,   true,  DType::kI16},
    {GgmlType::kI32,     "i32",      1,   4,   true,  DType::kI32},
    {GgmlType::kI64,     "i64",      1,   8,   true,  DType::kI64},
    {GgmlType::kF64,     "f64",      1,   8,   true,  DType::kF64},
    {GgmlType::kIQ1_M,   "iq1_m",    256, 56,  false, DType::kU8},
    {GgmlType::kBF16,    "bf16",     1,   2,   true,  DType::kBF16},
    {GgmlType::kTQ1_0,   "tq1_0",    256, 54,  false, DType::kU8},
    {GgmlType::kTQ2_0,   "tq2_0",    256, 66,  false, DType::kU8},
    {GgmlType::kMXFP4,   "mxfp4",    32,  17,  false, DType::kU8},     // e8m0 + 16 B
    {GgmlType::kNVFP4,   "nvfp4",    64,  36,  false, DType::kU8},     // 4 ue4m3 scales + 32 B
    {GgmlType::kQ1_0,    "q1_0",     128, 18,  false, DType::kU8},
    {GgmlType::kQ2_0,    "q2_0",     64,  18,  false, DType::kU8},
};
// clang-format on

// The entry for a raw type id from a file, or nullptr (unknown or removed).
constexpr const GgmlTypeInfo* ggml_type_info(uint32_t id) {
  for (const auto& e : kGgmlTypes)
    if (uint32_t(e.type) == id) return &e;
  return nullptr;
}
constexpr const GgmlTypeInfo& ggml_type_info(GgmlType t) { return *ggml_type_info(uint32_t(t)); }

// The GGUF type that stores a DType; false for bool/u8 (no ggml type).
constexpr bool ggml_type_of(DType d, GgmlType* out) {
  for (const auto& e : kGgmlTypes)
    if (e.has_dtype && e.dtype == d) {
      *out = e.type;
      return true;
    }
  return false;
}

// Bytes of one row of `n` elements; false if n is not a whole number of
// blocks or the size overflows.
constexpr bool ggml_row_bytes(const GgmlTypeInfo& t, uint64_t n, uint64_t* out) {
  if (n % t.block_elems != 0) return false;
  return !__builtin_mul_overflow(n / t.block_elems, uint64_t(t.block_bytes), out);
}

// The block sizes the spec/brief call out, pinned against ggml-common.h.
static_assert(ggml_type_info(GgmlType::kQ8_0).block_bytes == 2 + 32);
static_assert(ggml_type_info(GgmlType::kQ4_0).block_bytes == 2 + 32 / 2);
static_assert(ggml_type_info(GgmlType::kIQ4_NL).block_bytes == 2 + 32 / 2);
static_assert(ggml_type_info(GgmlType::kQ4_K).block_bytes == 2 * 2 + 12 + 256 / 2);
static_assert(ggml_type_info(GgmlType::kQ6_K).block_bytes == 2 + 256 / 16 + 3 * 256 / 4);
static_assert(ggml_type_info(GgmlType::kQ8_K).block_bytes == 4 + 256 + 256 / 16 * 2);
static_assert(ggml_type_info(4) == nullptr && ggml_type_info(31) == nullptr && ggml_type_info(43) == nullptr);

}  // namespace dsvl2
