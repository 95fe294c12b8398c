#include "core/dtype.h"

#include <cmath>

#include "core/error.h"

namespace dsvl2 {

namespace {
struct Entry {
  DType t;
  const char* name;
  size_t size;      // bytes per block
  int64_t block;    // elements per block (1 = scalar type, valid in safetensors)
};
// Block sizes match ggml-common.h (QK4_0 = QK8_0 = QK4_NL = 32, QK_K = 256) and the
// GGUF table in io/gguf_types.h (checked there by static_assert).
constexpr Entry kTable[] = {
    {DType::kF32, "F32", 4, 1},       {DType::kF16, "F16", 2, 1},       {DType::kBF16, "BF16", 2, 1},
    {DType::kF64, "F64", 8, 1},       {DType::kI64, "I64", 8, 1},       {DType::kI32, "I32", 4, 1},
    {DType::kI16, "I16", 2, 1},       {DType::kI8, "I8", 1, 1},         {DType::kU8, "U8", 1, 1},
    {DType::kBool, "BOOL", 1, 1},     {DType::kQ4_0, "Q4_0", 18, 32},   {DType::kQ8_0, "Q8_0", 34, 32},
    {DType::kQ4_K, "Q4_K", 144, 256}, {DType::kQ6_K, "Q6_K", 210, 256}, {DType::kQ8_K, "Q8_K", 292, 256},
    {DType::kIQ4_NL, "IQ4_NL", 18, 32},
};

const Entry& entry(DType t) {
  for (const auto& e : kTable)
    if (e.t == t) return e;
  check_failed(__FILE__, __LINE__, "known dtype", strformat("dtype %d", int(t)));
}
}  // namespace

size_t dtype_size(DType t) {
  const Entry& e = entry(t);
  DSVL2_CHECK(e.block == 1, "dtype_size(%s): a block-quantized type has no per-element size", e.name);
  return e.size;
}

bool dtype_is_quantized(DType t) { return entry(t).block > 1; }
int64_t dtype_block_elems(DType t) { return entry(t).block; }
size_t dtype_block_bytes(DType t) { return entry(t).size; }

bool dtype_bytes(DType t, int64_t n, uint64_t* out) {
  const Entry& e = entry(t);
  if (n < 0 || n % e.block != 0) return false;
  return !__builtin_mul_overflow(uint64_t(n / e.block), uint64_t(e.size), out);
}

const char* dtype_name(DType t) {
  for (const auto& e : kTable)
    if (e.t == t) return e.name;
  return "?";
}

bool dtype_from_name(std::string_view name, DType* out) {
  for (const auto& e : kTable)
    if (e.block == 1 && name == e.name) {
      *out = e.t;
      return true;
    }
  return false;
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t man = h & 0x3ff;
  uint32_t u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        e++;
        man <<= 1;
      } while ((man & 0x400) == 0);
      u = sign | uint32_t(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | man << 13;
  } else {
    u = sign | (exp + 127 - 15) << 23 | man << 13;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint32_t sign = (u >> 16) & 0x8000;
  int32_t exp = int32_t((u >> 23) & 0xff) - 127 + 15;
  uint32_t man = u & 0x7fffff;
  if (((u >> 23) & 0xff) == 0xff) return uint16_t(sign | 0x7c00 | (man ? 0x200 : 0));
  if (exp >= 31) return uint16_t(sign | 0x7c00);
  if (exp <= 0) {
    if (exp < -10) return uint16_t(sign);
    man |= 0x800000;
    uint32_t shift = uint32_t(14 - exp);
    uint32_t half = man >> shift;
    uint32_t rem = man & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) half++;
    return uint16_t(sign | half);
  }
  uint32_t half = sign | uint32_t(exp) << 10 | man >> 13;
  uint32_t rem = man & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
  return uint16_t(half);
}

}  // namespace dsvl2
