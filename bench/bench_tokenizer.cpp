// Tokenizer encode/decode throughput on one thread, on a deterministic mixed
// English / Chinese / code corpus. Needs the DeepSeek-V3 tokenizer.json:
// $DSVL2_TOKENIZER, or ../shared/tokenizer/deepseek_v3 beside the checkout.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/file.h"
#include "text/tokenizer.h"

namespace {

using dsvl2::Tokenizer;

struct Lcg {  // deterministic across platforms
  uint64_t s;
  uint32_t next() {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return uint32_t(s >> 33);
  }
  template <class T>
  const T& pick(const std::vector<T>& v) { return v[next() % v.size()]; }
};

const std::vector<std::string> kEnglish = {
    "the", "model", "image", "tokens", "of", "and", "a", "vision", "language", "with", "is", "for", "each",
    "expert", "layer", "attention", "returns", "Describe", "picture", "shows", "two", "people", "walking",
    "on", "beach", "near", "sunset", "while", "dog", "runs", "behind", "them", "There", "are", "several",
    "boats", "in", "harbor", "It's", "we'll", "don't", "1024", "3.14", "2024", "(see", "Fig.", "7)"};
const std::vector<std::string> kChinese = {
    "我们", "模型", "图像", "这个", "一个", "可以", "描述", "图片", "中的", "人物", "正在", "海边", "散步",
    "夕阳", "非常", "美丽", "视觉", "语言", "专家", "混合", "注意力", "机制", "北京", "天气", "今天", "很好",
    "数据", "训练", "推理", "速度", "提高", "了", "的", "是", "在", "和", "有", "不"};
const std::vector<std::string> kChinesePunct = {"，", "。", "、", "：", "！", "？"};
const std::vector<std::string> kCode = {
    "for (int i = 0; i < n; i++) {\n  sum += x[i] * w[i];\n}\n",
    "def forward(self, x):\n    return self.proj(F.gelu(self.fc(x)))\n",
    "    if (!ok) return Error(\"bad input\");\n",
    "std::vector<int32_t> ids = tok.encode(text);\n",
    "import torch\nfrom transformers import AutoTokenizer\n",
    "{\"role\": \"user\", \"content\": \"<image>\\nDescribe.\"},\n",
    "\tx = np.zeros((384, 384, 3), dtype=np.uint8)  # tile\n"};

std::string make_corpus(size_t bytes, int mix /*0 mixed, 1 en, 2 zh, 3 code*/) {
  Lcg r{42 + uint64_t(mix)};
  std::string s;
  s.reserve(bytes + 256);
  while (s.size() < bytes) {
    int kind = mix ? mix : int(r.next() % 3) + 1;
    int n = 8 + int(r.next() % 24);
    if (kind == 1) {
      for (int k = 0; k < n; k++) s += r.pick(kEnglish) + (k + 1 < n ? " " : ". ");
    } else if (kind == 2) {
      for (int k = 0; k < n; k++) {
        s += r.pick(kChinese);
        if (r.next() % 5 == 0) s += r.pick(kChinesePunct);
      }
      s += "。\n";
    } else {
      s += r.pick(kCode);
    }
  }
  return s;
}

std::string tokenizer_path() {
  if (const char* e = std::getenv("DSVL2_TOKENIZER"); e && *e) return e;
  std::string src = __FILE__;
  std::string root = src.substr(0, src.rfind("/bench/"));
  return root + "/../shared/tokenizer/deepseek_v3";
}

const Tokenizer* tokenizer() {
  static const Tokenizer* t = [] () -> const Tokenizer* {
    const std::string p = tokenizer_path();
    if (!dsvl2::file_exists(p) && !dsvl2::is_directory(p)) return nullptr;
    return new Tokenizer(Tokenizer::load(p));
  }();
  return t;
}

void BM_Encode(benchmark::State& state) {
  const Tokenizer* tok = tokenizer();
  if (!tok) return state.SkipWithError("tokenizer.json not found (set DSVL2_TOKENIZER)");
  const std::string corpus = make_corpus(size_t(state.range(1)) << 20, int(state.range(0)));
  size_t n_ids = 0;
  for (auto _ : state) {
    auto ids = tok->encode(corpus);
    n_ids = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(corpus.size()));
  state.counters["bytes/token"] = double(corpus.size()) / double(n_ids);
}
// range(0): 0 mixed, 1 English, 2 Chinese, 3 code; range(1): MiB.
BENCHMARK(BM_Encode)->Args({0, 4})->Args({1, 2})->Args({2, 2})->Args({3, 2})->Unit(benchmark::kMillisecond);

void BM_Decode(benchmark::State& state) {
  const Tokenizer* tok = tokenizer();
  if (!tok) return state.SkipWithError("tokenizer.json not found (set DSVL2_TOKENIZER)");
  const std::string corpus = make_corpus(size_t(4) << 20, 0);
  const auto ids = tok->encode(corpus);
  for (auto _ : state) {
    dsvl2::StreamDecoder sd(*tok);
    size_t n = 0;
    for (int32_t id : ids) n += sd.push(id).size();
    n += sd.flush().size();
    benchmark::DoNotOptimize(n);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(corpus.size()));
}
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond);

void BM_Load(benchmark::State& state) {
  const std::string p = tokenizer_path();
  if (!dsvl2::is_directory(p)) return state.SkipWithError("tokenizer.json not found (set DSVL2_TOKENIZER)");
  for (auto _ : state) benchmark::DoNotOptimize(Tokenizer::load(p).vocab_size());
}
BENCHMARK(BM_Load)->Unit(benchmark::kMillisecond)->Iterations(2);

}  // namespace

BENCHMARK_MAIN();
