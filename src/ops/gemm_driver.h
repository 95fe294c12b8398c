// Cache-blocked GEMM driver shared by the SIMD kernel files:
//   y[M, N] = A[M, K] · W^T (+ bias), W[N, K] as stored (PyTorch Linear).
// W is packed per K block into panels of kNR output columns laid out the way
// the micro-kernel's vector loads want them (Kern::pack); A (activations, f32
// or bf16) is read in place, row stride lda. Loop order, per thread over its
// own column range:
//   column group (kNCPanels panels)
//     K block (kKC)             pack the group's panels (L2)
//       kMR rows                A micro-panel (L1), reused across the group
//         one panel             micro-kernel: kMR x kNR register tile
// The first K block writes y (+ bias), later ones accumulate into it.
// (Packing A into row tiles and a BLIS order with the B micro-panel in L1
// measured no faster on Zen; this order keeps A unpacked.)
//
// Kern provides: AType, PackT, kNR, kMR, kKC, kNCPanels,
//   size_t panel_elems(int64_t kc);                     // PackT per panel
//   void pack(const Weight&, int64_t n0, int64_t k0, int64_t kc, PackT* dst);
//   void kernel(int mr, const AType* a, int64_t lda, const PackT* b, int64_t kc,
//               float* c, int64_t ldc, int ncols, bool first, const float* bias);
// and optionally int64_t a_offset(int64_t k0): where column k0 of an A row
// starts (default k0; rows that carry per-block data are longer than K).
//
// Everything here sits in an anonymous namespace: every ISA file compiles its
// own copy with its own instruction-set flags, which must not be merged by the
// linker (an AVX-512 copy must never serve the AVX2 table).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "core/scratch.h"
#include "ops/ops.h"

namespace dsvl2 {
namespace {

// W packed once for Kern: K block kb holds n_panels panels of
// panel_elems(kc of that block) each; only the last block is shorter than kKC,
// so block kb starts at kb * n_panels * panel_elems(kKC).
template <class Kern>
int64_t prepacked_last_kc(const Weight& w) {
  return w.cols - (w.cols - 1) / Kern::kKC * Kern::kKC;
}
template <class Kern>
size_t prepacked_elems(const Weight& w) {
  const int64_t n_panels = (w.rows + Kern::kNR - 1) / Kern::kNR, n_kb = (w.cols + Kern::kKC - 1) / Kern::kKC;
  return size_t(n_panels) *
         (size_t(n_kb - 1) * Kern::panel_elems(Kern::kKC) + Kern::panel_elems(prepacked_last_kc<Kern>(w)));
}
template <class Kern>
size_t prepacked_offset(int64_t n_panels, int64_t kb, int64_t panel, int64_t kc) {
  return size_t(kb * n_panels) * Kern::panel_elems(Kern::kKC) + size_t(panel) * Kern::panel_elems(kc);
}
template <class Kern>
void prepack(const Weight& w, typename Kern::PackT* dst) {
  const int64_t n_panels = (w.rows + Kern::kNR - 1) / Kern::kNR;
  for (int64_t k0 = 0, kb = 0; k0 < w.cols; k0 += Kern::kKC, kb++) {
    const int64_t kc = std::min<int64_t>(Kern::kKC, w.cols - k0);
    for (int64_t p = 0; p < n_panels; p++)
      Kern::pack(w, p * Kern::kNR, k0, kc, dst + prepacked_offset<Kern>(n_panels, kb, p, kc));
  }
}

template <class Kern>
int64_t a_offset(int64_t k0) {
  if constexpr (requires { Kern::a_offset(k0); }) return Kern::a_offset(k0);
  else return k0;
}

// Run-time row count (1 .. Kern::kMR, at most 12) -> compile-time tile height.
template <class Kern, class A, class B>
void dispatch_tile(int mr, const A* a, int64_t lda, const B* b, int64_t kc, float* c, int64_t ldc, int ncols,
                   bool first, const float* bias) {
  static_assert(Kern::kMR >= 1 && Kern::kMR <= 12, "one case per tile height up to 12");
  switch (mr) {
#define DSVL2_TILE(R)                                                                   \
  case R:                                                                               \
    if constexpr (R <= Kern::kMR) return Kern::template tile<R>(a, lda, b, kc, c, ldc, \
                                                                ncols, first, bias);   \
    break;
    DSVL2_TILE(1) DSVL2_TILE(2) DSVL2_TILE(3) DSVL2_TILE(4) DSVL2_TILE(5) DSVL2_TILE(6)
    DSVL2_TILE(7) DSVL2_TILE(8) DSVL2_TILE(9) DSVL2_TILE(10) DSVL2_TILE(11) DSVL2_TILE(12)
#undef DSVL2_TILE
  }
}

// prepacked: W already packed by prepack<Kern> (nullptr: pack per call).
template <class Kern>
void gemm_blocked(const typename Kern::AType* a, int64_t lda, int64_t M, const Weight& w, const float* bias,
                  float* y, ThreadPool& pool, const typename Kern::PackT* prepacked = nullptr) {
  using PackT = typename Kern::PackT;
  const int64_t N = w.rows, K = w.cols;
  constexpr int NR = Kern::kNR, MR = Kern::kMR;
  const int64_t n_panels = (N + NR - 1) / NR;
  const int T = pool.size();
  // Split columns across threads when there are enough panels, else rows
  // (then each thread packs the whole weight; only happens for small N).
  const bool split_n = n_panels >= 2 * int64_t(T) || M < int64_t(MR) * T;
  // Panels [p0, p1) times rows [m_begin, m_end) on the calling thread.
  auto run = [&](int64_t p0, int64_t p1, int64_t m_begin, int64_t m_end) {
    if (p0 >= p1 || m_begin >= m_end) return;
    thread_local ScratchBuffer buf;
    const size_t pe = Kern::panel_elems(Kern::kKC);
    PackT* pack = prepacked ? nullptr : static_cast<PackT*>(buf.get(pe * Kern::kNCPanels * sizeof(PackT)));
    for (int64_t jc = p0; jc < p1; jc += Kern::kNCPanels) {
      const int64_t jn = std::min<int64_t>(p1 - jc, Kern::kNCPanels);
      for (int64_t k0 = 0; k0 < K; k0 += Kern::kKC) {
        const int64_t kc = std::min<int64_t>(Kern::kKC, K - k0);
        const size_t ps = Kern::panel_elems(kc);
        const PackT* panels = prepacked ? prepacked + prepacked_offset<Kern>(n_panels, k0 / Kern::kKC, jc, kc) : pack;
        const size_t stride = ps;
        if (!prepacked)
          for (int64_t j = 0; j < jn; j++) Kern::pack(w, (jc + j) * NR, k0, kc, pack + j * ps);
        const bool first = k0 == 0;
        for (int64_t m0 = m_begin; m0 < m_end; m0 += MR) {
          const int mr = int(std::min<int64_t>(MR, m_end - m0));
          for (int64_t j = 0; j < jn; j++) {
            const int64_t n0 = (jc + j) * NR;
            const int ncols = int(std::min<int64_t>(NR, N - n0));
            Kern::kernel(mr, a + m0 * lda + a_offset<Kern>(k0), lda, panels + j * stride, kc, y + m0 * N + n0, N,
                         ncols, first, first && bias ? bias + n0 : nullptr);
          }
        }
      }
    }
  };
  if (split_n) {
    // Balanced: a thread slowed by a neighbour hands column groups from the
    // end of its half to the other instead of holding it at the region's end.
    const int64_t grain = std::max<int64_t>(1, std::min<int64_t>(Kern::kNCPanels, n_panels / (2 * T)));
    pool.parallel_for_balanced(n_panels, [&](int64_t p0, int64_t p1, int) { run(p0, p1, 0, M); }, grain);
  } else {
    pool.run_on_all([&](int tid) {
      const int64_t tiles = (M + MR - 1) / MR;
      run(0, n_panels, std::min(M, tiles * tid / T * MR), std::min(M, tiles * (tid + 1) / T * MR));
    });
  }
}

}  // namespace
}  // namespace dsvl2
