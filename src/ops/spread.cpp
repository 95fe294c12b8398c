#include "ops/spread.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace dsvl2 {

bool spread_items(const Ops& ops, std::span<const int64_t> cost,
                  const std::function<void(int item, const Ops& solo)>& fn) {
  const int threads = ops.pool->size();
  const int n = int(cost.size());
  if (threads <= 1 || n < threads || ops.pool->in_job()) return false;
  std::vector<std::pair<int64_t, int>> order;
  order.reserve(size_t(n));
  for (int i = 0; i < n; i++) order.push_back({cost[size_t(i)], i});
  std::sort(order.begin(), order.end(),
            [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  std::vector<std::vector<int>> plan(static_cast<size_t>(threads));
  std::vector<int64_t> load(static_cast<size_t>(threads), 0);
  for (const auto& [c, i] : order) {
    const size_t t = size_t(std::min_element(load.begin(), load.end()) - load.begin());
    plan[t].push_back(i);
    load[t] += c;
  }
  ops.pool->run_on_all([&](int t) {
    ThreadPool solo(1);
    const Ops o{ops.k, &solo, ops.compute};
    for (int i : plan[size_t(t)]) fn(i, o);
  });
  return true;
}

}  // namespace dsvl2
