// Measures this machine's limits, so benchmarks can report each workload as a
// fraction of what the hardware can do (same run, same noise).
//
// Memory is read the way decode reads weights: one huge-page mapping (like
// the packed-weight arena), every thread streaming its own contiguous share
// with eight independent loads in flight. A STREAM-style triad (a = b + s c,
// counted as STREAM counts it: two reads and one write a element) is the
// documented external cross-check. Shared machines' bandwidth drifts with the
// neighbours, so `dsvl2 bench` measures the read bandwidth again right before
// and after the decode it judges and uses the highest reading.
#pragma once
#include <cstddef>

#include "core/thread_pool.h"

namespace dsvl2 {

struct Roofline {
  double mem_gbs = 0;      // streaming read bandwidth, all threads
  double triad_gbs = 0;    // STREAM triad bandwidth (cross-check)
  double f32_gflops = 0;   // FMA peak
  // The peak of the instruction the bf16 mode's products run on: the
  // AVX512-BF16 dot product, or on AVX2 machines the f32 FMA (the mode rounds
  // activations to bf16 and multiplies in f32 there). 0 without either.
  double bf16_gflops = 0;
  // AVX512-VNNI peak, or on AVX2 vpmaddubsw + vpmaddwd (0 without either).
  double int8_gops = 0;
};

// `quick`: fewer repetitions of the same measurements (not smaller ones).
Roofline measure_roofline(ThreadPool& pool, bool quick);

// Best of `reps` streaming reads over `bytes` (GB/s, all threads); 0 when the
// buffer cannot be had.
double measure_read_bandwidth(ThreadPool& pool, size_t bytes, int reps);

}  // namespace dsvl2
