// libFuzzer target for the GGUF reader (parse_gguf) and the typed metadata
// accessors that consume it. Build: cmake --preset fuzz && cmake --build
// build-fuzz --target fuzz_gguf; run: build-fuzz/fuzz/fuzz_gguf -dict=fuzz/gguf.dict CORPUS/
// Any input must either parse or throw dsvl2::Error: a crash, sanitizer report,
// other exception type or out-of-bounds read of the tensor bytes is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_dsvl2.h"

namespace {

template <class T>
void probe(const dsvl2::GgufMetadata& m, const std::string& key) {
  try {
    (void)m.get<T>(key);
  } catch (const dsvl2::Error&) {
  }
  try {
    (void)m.get_array<T>(key, 1u << 20);
  } catch (const dsvl2::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dsvl2::GgufHeader h;
  try {
    h = dsvl2::parse_gguf(data, size, "fuzz");
  } catch (const dsvl2::Error&) {
    return 0;
  }
  // The accessor of the stored type must work; a wrong one must throw, not
  // read (two wrong probes per key keep the exception cost per input low).
  using T = dsvl2::GgufType;
  const dsvl2::GgufMetadata& m = h.metadata;
  for (const auto& [key, v] : m.entries()) {
    switch (v.type) {
      case T::kU8: probe<uint8_t>(m, key); break;
      case T::kI8: probe<int8_t>(m, key); break;
      case T::kU16: probe<uint16_t>(m, key); break;
      case T::kI16: probe<int16_t>(m, key); break;
      case T::kU32: probe<uint32_t>(m, key); break;
      case T::kI32: probe<int32_t>(m, key); break;
      case T::kF32: probe<float>(m, key); break;
      case T::kBool: probe<bool>(m, key); break;
      case T::kString: probe<std::string>(m, key); break;
      case T::kU64: probe<uint64_t>(m, key); break;
      case T::kI64: probe<int64_t>(m, key); break;
      case T::kF64: probe<double>(m, key); break;
      case T::kArray: __builtin_trap();  // never stored as an element type
    }
    if (v.type != T::kU32) probe<uint32_t>(m, key);
    if (v.type != T::kString) probe<std::string>(m, key);
    try {
      (void)m.get_count(key, 1000);
    } catch (const dsvl2::Error&) {
    }
  }
  try {
    (void)dsvl2::gguf_vl_config(m);
  } catch (const dsvl2::Error&) {
  }
  // Touch the first and last byte of every tensor: ASan flags a view that
  // points outside the input.
  unsigned sum = 0;
  for (const auto& t : h.tensors) {
    if (t.view.nbytes == 0) continue;
    const auto* p = static_cast<const uint8_t*>(t.view.data);
    sum += p[0] + p[t.view.nbytes - 1];
  }
  volatile unsigned sink = sum;
  (void)sink;
  return 0;
}
