// libFuzzer target: parse_safetensors must either accept an input or throw
// dsvl2::Error; any crash, sanitizer report or other exception is a bug.
// Accepted inputs are re-checked: every tensor view lies inside the buffer.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    dsvl2::SafetensorsHeader h = dsvl2::parse_safetensors(data, size, "fuzz");
    for (const auto& t : h.tensors) {
      const uint8_t* p = static_cast<const uint8_t*>(t.view.data);
      (void)t.view.numel();  // UBSan: the element count must not overflow
      if (p < data + h.data_start || p + t.view.nbytes > data + size) abort();
      // Touch the first and last byte so ASan sees any bad view.
      if (t.view.nbytes > 0) {
        volatile uint8_t a = p[0], b = p[t.view.nbytes - 1];
        (void)a;
        (void)b;
      }
    }
  } catch (const dsvl2::Error&) {
  }
  return 0;
}
