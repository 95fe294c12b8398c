#include "ops/prepack.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <unordered_set>

#include "core/error.h"

namespace dsvl2 {

namespace {

uint64_t source_bytes(const Weight& w) {
  uint64_t b = 0;
  return dtype_bytes(w.dtype, w.rows * w.cols, &b) ? b : 0;
}

// The parts stacked row-wise (every stored layout keeps a row's bytes
// together), or an empty Weight when they cannot be stacked.
Weight stacked_shape(const FuseGroup& g) {
  Weight s;
  if (g.parts.size() < 2) return s;
  s.dtype = g.parts[0]->dtype;
  s.cols = g.parts[0]->cols;
  for (const Weight* p : g.parts) {
    if (p->empty() || p->dtype != s.dtype || p->cols != s.cols || p->packed) return Weight{};
    s.rows += p->rows;
  }
  return s;
}

}  // namespace

std::unique_ptr<Arena> prepack_weights(const std::vector<Weight*>& ws, const std::vector<FuseGroup>& groups,
                                       const Ops& ops, const ReleaseSource& release, size_t* bytes) {
  // One task per matrix or fused group; a group's stacked shape has no data
  // until its task copies the parts together.
  struct Task {
    Weight* single = nullptr;
    const FuseGroup* group = nullptr;
    Weight stacked;
    size_t offset = 0;
  };
  std::vector<Task> tasks;
  size_t total = 0;
  auto place = [&](Task t, const Weight& shape) {
    const size_t b = ops.prepared_bytes(shape);
    if (b == 0) return false;
    t.offset = total;
    total += (b + 63) & ~size_t(63);
    tasks.push_back(t);
    return true;
  };
  std::unordered_set<const Weight*> fused_parts;
  for (const FuseGroup& g : groups) {
    const Weight s = stacked_shape(g);
    if (s.rows == 0 || !place(Task{nullptr, &g, s, 0}, s)) continue;
    fused_parts.insert(g.parts.begin(), g.parts.end());
  }
  for (Weight* w : ws)
    if (!fused_parts.count(w)) place(Task{w, nullptr, Weight{}, 0}, *w);
  if (bytes) *bytes = total;
  if (total == 0) return nullptr;
  auto arena = std::make_unique<Arena>(total);
  char* base = static_cast<char*>(arena->take(total));
  // One matrix per task; each is packed, then its source released, so the
  // packed copy replaces the mapped one in memory instead of adding to it.
  ops.pool->parallel_for(int64_t(tasks.size()), [&](int64_t i0, int64_t i1, int) {
    std::vector<uint8_t> stack;
    for (int64_t i = i0; i < i1; i++) {
      Task& t = tasks[size_t(i)];
      if (t.single) {
        Weight& w = *t.single;
        const Weight packed = ops.prepare_into(w, base + t.offset);
        if (release && source_bytes(w)) release(w.data, size_t(source_bytes(w)));
        w = packed;
        continue;
      }
      stack.resize(size_t(source_bytes(t.stacked)));
      size_t at = 0;
      for (const Weight* p : t.group->parts) {
        std::memcpy(stack.data() + at, p->data, size_t(source_bytes(*p)));
        at += size_t(source_bytes(*p));
      }
      Weight src = t.stacked;
      src.data = stack.data();
      FusedWeight& f = *t.group->out;
      f.w = ops.prepare_into(src, base + t.offset);
      DSVL2_CHECK(f.w.packed != nullptr, "fused weight: no packed form after all");
      f.w.data = nullptr;  // the stacked source is gone; only the packed copy is read
      f.table = ops.k;
      f.compute = ops.compute;
      if (release)
        for (const Weight* p : t.group->parts) release(p->data, size_t(source_bytes(*p)));
    }
  });
  return arena;
}

void linear_parts(const Ops& ops, const float* x, int64_t M, const FusedWeight& fused,
                  std::initializer_list<const Weight*> parts, std::initializer_list<float*> out) {
  DSVL2_CHECK(parts.size() == out.size(), "linear_parts: %zu parts, %zu outputs", parts.size(), out.size());
  if (!fused.usable(ops)) {
    auto o = out.begin();
    for (const Weight* p : parts) ops.linear(x, M, *p, nullptr, *o++);
    return;
  }
  const int64_t N = fused.w.rows;
  thread_local std::vector<float> buffer;  // the caller's; workers below see it through `y`
  buffer.resize(size_t(M * N));
  float* const y = buffer.data();
  ops.linear(x, M, fused.w, nullptr, y);
  int64_t rows = 0;
  for (const Weight* p : parts) rows += p->rows;
  DSVL2_CHECK(rows == N, "linear_parts: the parts have %lld rows, the fused weight %lld", (long long)rows,
              (long long)N);
  // Prompt-sized M: the split is megabytes, so it runs on every thread.
  ops.pool->parallel_for(M, [&](int64_t m0, int64_t m1, int) {
    int64_t col = 0;
    auto o = out.begin();
    for (const Weight* p : parts) {
      for (int64_t m = m0; m < m1; m++)
        std::memcpy(*o + m * p->rows, y + m * N + col, size_t(p->rows) * sizeof(float));
      col += p->rows;
      o++;
    }
  }, 16);
}

}  // namespace dsvl2
