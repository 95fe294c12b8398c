// Measures this machine's limits, so benchmarks can report each workload as a
// fraction of what the hardware can do (same run, same noise).
#pragma once
#include "core/thread_pool.h"

namespace dsvl2 {

struct Roofline {
  double mem_gbs = 0;      // streaming read bandwidth, all threads
  double f32_gflops = 0;   // FMA peak
  double bf16_gflops = 0;  // AVX512-BF16 dot-product peak (0 when absent)
  double int8_gops = 0;    // AVX512-VNNI peak (0 when absent)
};

// `quick` uses shorter loops (a rougher, faster estimate).
Roofline measure_roofline(ThreadPool& pool, bool quick);

}  // namespace dsvl2
