#include "core/tensor.h"

#include <cstring>

#include "core/error.h"

namespace dsvl2 {

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); i++) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

Tensor::Tensor(DType dtype, Shape shape, bool zero) : dtype_(dtype), shape_(std::move(shape)) {
  for (int64_t d : shape_) DSVL2_CHECK(d >= 0, "negative dimension in %s", shape_str(shape_).c_str());
  // Block-quantized tensors hold whole blocks of the last (row) dimension.
  uint64_t nb = 0;
  bool rows_ok = !dtype_is_quantized(dtype_) || (!shape_.empty() && shape_.back() % dtype_block_elems(dtype_) == 0);
  DSVL2_CHECK(rows_ok && dtype_bytes(dtype_, numel(), &nb), "%s tensor %s: rows must be whole blocks",
              dtype_name(dtype_), shape_str(shape_).c_str());
  nbytes_ = size_t(nb);
  size_t alloc = (nbytes_ + 63) / 64 * 64;
  if (alloc == 0) alloc = 64;
  void* p = alloc_aligned64(alloc);
  if (!p) throw Error(strformat("out of memory allocating %zu bytes for a tensor %s", alloc, shape_str(shape_).c_str()));
  if (zero) std::memset(p, 0, alloc);
  data_.reset(p);
}

void Tensor::reshape(Shape s) {
  DSVL2_CHECK(shape_numel(s) == numel(), "reshape %s -> %s", shape_str(shape_).c_str(), shape_str(s).c_str());
  shape_ = std::move(s);
}

Tensor to_f32(const TensorView& v) {
  Tensor t = Tensor::f32(v.shape);
  float* o = t.f32();
  int64_t n = v.numel();
  switch (v.dtype) {
    case DType::kF32:
      std::memcpy(o, v.data, size_t(n) * 4);
      break;
    case DType::kBF16: {
      const uint16_t* s = static_cast<const uint16_t*>(v.data);
      for (int64_t i = 0; i < n; i++) o[i] = bf16_to_f32(s[i]);
      break;
    }
    case DType::kF16: {
      const uint16_t* s = static_cast<const uint16_t*>(v.data);
      for (int64_t i = 0; i < n; i++) o[i] = f16_to_f32(s[i]);
      break;
    }
    default:
      throw Error(strformat("cannot convert %s tensor to F32", dtype_name(v.dtype)));
  }
  return t;
}

}  // namespace dsvl2
