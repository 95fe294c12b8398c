// Element types as they appear in safetensors / GGUF files, with the scalar
// conversions every stage shares (bf16 and f16 <-> f32).
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace dsvl2 {

// Scalar types, then block-quantized ggml types (only found in GGUF files).
// A block type packs dtype_block_elems() consecutive elements of a row (the
// last PyTorch dimension) into dtype_block_bytes() bytes; the layouts are
// ggml's (ggml-common.h), see io/gguf_types.h for the full ggml type table.
//   kQ4_0: f16 scale + 16 bytes of nibbles per 32       kQ8_0: f16 scale + 32 int8 per 32
//   kQ4_K / kQ6_K / kQ8_K: 256-element super-blocks (144 / 210 / 292 bytes)
//   kIQ4_NL: f16 scale + 16 bytes of nibbles per 32, each nibble an index into
//            ggml's 16-value non-linear grid (kvalues_iq4nl)
// New types go at the end: the values of the others stay as they were.
enum class DType : uint8_t {
  kF32, kF16, kBF16, kF64, kI64, kI32, kI16, kI8, kU8, kBool, kQ4_0, kQ8_0, kQ4_K, kQ6_K, kQ8_K, kIQ4_NL
};

// Bytes per element of a scalar type. Block types have no per-element size:
// calling this with one is a bug (DSVL2_CHECK); use dtype_row_bytes.
size_t dtype_size(DType t);
const char* dtype_name(DType t);  // safetensors spelling: "F32", "BF16", ...; "Q8_0" for block types
// Parses a safetensors dtype string (scalar types only); false for unknown names.
bool dtype_from_name(std::string_view name, DType* out);
bool dtype_is_quantized(DType t);    // a block type
int64_t dtype_block_elems(DType t);  // 1 for scalar types
size_t dtype_block_bytes(DType t);   // == dtype_size for scalar types
// Bytes of `n` elements, n a multiple of the block size; false on overflow or
// a partial block.
bool dtype_bytes(DType t, int64_t n, uint64_t* out);

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round-to-nearest-even, as torch's float -> bfloat16 cast (NaN kept quiet).
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

// Rounds an f32 to the nearest bf16 value, kept in f32.
inline float round_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

// n consecutive values, element by element as above (e.g. one token's K or V
// row into a bf16 KV cache; src and dst must not overlap).
inline void f32_to_bf16_row(const float* src, int64_t n, uint16_t* dst) {
  for (int64_t i = 0; i < n; i++) dst[i] = f32_to_bf16(src[i]);
}
inline void bf16_to_f32_row(const uint16_t* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_f32(src[i]);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

}  // namespace dsvl2
