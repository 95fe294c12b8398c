// Tensors: an owning, 64-byte-aligned buffer with a dtype and a shape in
// PyTorch order (outermost first), and a non-owning view into mapped files.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/heap.h"

namespace dsvl2 {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);  // "[2, 3, 4]"

// Read-only view of tensor bytes owned elsewhere (an mmapped file).
struct TensorView {
  DType dtype = DType::kF32;
  Shape shape;
  const void* data = nullptr;
  size_t nbytes = 0;
  int64_t numel() const { return shape_numel(shape); }
};

class Tensor {
 public:
  Tensor() = default;
  Tensor(DType dtype, Shape shape, bool zero = true);  // zero-filled unless told
  static Tensor f32(Shape shape) { return Tensor(DType::kF32, std::move(shape)); }
  // Contents undefined: for outputs that are written in full before being
  // read (training allocates many large activations a step; zeroing them is
  // a pass over memory for nothing).
  static Tensor f32_uninit(Shape shape) { return Tensor(DType::kF32, std::move(shape), false); }

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return nbytes_; }
  void* data() { return data_.get(); }
  const void* data() const { return data_.get(); }
  template <class T>
  T* as() { return static_cast<T*>(data()); }
  template <class T>
  const T* as() const { return static_cast<const T*>(data()); }
  float* f32() { return as<float>(); }
  const float* f32() const { return as<float>(); }
  TensorView view() const { return TensorView{dtype_, shape_, data(), nbytes_}; }
  // Same bytes, new shape of equal element count.
  void reshape(Shape s);

 private:
  struct FreeDeleter {
    void operator()(void* p) const { free_aligned64(p); }
  };
  DType dtype_ = DType::kF32;
  Shape shape_;
  size_t nbytes_ = 0;
  std::unique_ptr<void, FreeDeleter> data_;
};

// Converts any float-like view (F32/F16/BF16) to an owning F32 tensor.
Tensor to_f32(const TensorView& v);

}  // namespace dsvl2
