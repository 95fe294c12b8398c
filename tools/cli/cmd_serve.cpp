// `dsvl2 serve`: the OpenAI-compatible server (docs/serve.md). The socket
// opens first, so /health answers "loading" while the model loads; the
// memory budget (weights + slots x context + image cache) is stated before
// the ready line.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "command.h"
#include "core/error.h"
#include "gen_options.h"
#include "serve/engine.h"
#include "serve/http_server.h"

namespace dsvl2::cli {
namespace {

struct ServeFlags {
  std::string model, api_key_file, compute = "bf16", allow_files;
  serve::HttpOptions http;
  serve::EngineOptions engine;
  int threads = 0;
  double image_cache_mb = 256, max_body_mb = 32;
  bool no_repack = false;
};

serve::HttpServer* g_server = nullptr;
extern "C" void on_signal(int) {
  if (g_server) g_server->stop();
}

std::string read_key_file(const std::string& path) {
  std::ifstream f(path);
  DSVL2_REQUIRE(f.good(), "--api-key-file %s: cannot read it", path.c_str());
  std::string key;
  std::getline(f, key);
  while (!key.empty() && (key.back() == '\r' || key.back() == ' ')) key.pop_back();
  DSVL2_REQUIRE(!key.empty(), "--api-key-file %s: the first line is empty", path.c_str());
  return key;
}

double gib(size_t b) { return double(b) / (1u << 30); }

// Bytes of the checkpoint files (the weights when they run from the mapping).
size_t checkpoint_bytes(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return size_t(fs::file_size(path, ec));
  size_t total = 0;
  for (const auto& e : fs::directory_iterator(path, ec))
    if (e.path().extension() == ".safetensors") total += size_t(e.file_size(ec));
  return total;
}

int serve_main(ServeFlags f) {
  if (!f.api_key_file.empty()) f.http.api_key = read_key_file(f.api_key_file);
  if (!f.allow_files.empty()) {
    DSVL2_REQUIRE(std::filesystem::is_directory(f.allow_files), "--allow-files %s is not a folder", f.allow_files.c_str());
    f.http.limits.allow_files_dir = f.allow_files;
  }
  f.http.max_body_bytes = size_t(f.max_body_mb * (1 << 20));
  f.engine.image_cache_bytes = size_t(f.image_cache_mb * (1 << 20));
  f.http.threads = std::clamp(2 * (f.engine.parallel + f.engine.queue_limit) + 8, 32, 1024);
  f.http.limits.max_tokens = std::min(f.http.limits.max_tokens, std::max(1, f.engine.context > 0 ? f.engine.context : 1 << 30));
  f.http.limits.default_max_tokens = std::min(f.http.limits.default_max_tokens, f.http.limits.max_tokens);
  Compute compute;
  DSVL2_REQUIRE(parse_compute(f.compute, &compute), "--compute must be f32 or bf16, got \"%s\"", f.compute.c_str());

  serve::Metrics metrics;
  serve::HttpServer http(f.http, metrics);
  const int port = http.bind();
  g_server = &http;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGPIPE, SIG_IGN);
  std::thread listener([&] { http.run(); });
  struct Join {
    std::thread& t;
    serve::HttpServer& h;
    ~Join() {
      h.stop();
      if (t.joinable()) t.join();
    }
  } join{listener, http};

  std::fprintf(stderr, "dsvl2: loading %s ...\n", f.model.c_str());
  VisionLanguageModel model(f.model);
  ThreadPool pool(f.threads);
  Ops ops{&kernels_best(), &pool, compute};
  const size_t packed = model.make_ready(ops, !f.no_repack);
  serve::Engine engine(model, ops, f.engine, &metrics);
  const std::string name = std::filesystem::path(f.model).filename().string();
  std::fprintf(stderr,
               "dsvl2: memory budget: weights %.2f GiB + KV %d slots x %d positions %.2f GiB + image cache %.2f GiB"
               " + vision activations %.2f GiB\n",
               gib(packed > 0 ? packed : checkpoint_bytes(f.model)), engine.options().parallel,
               engine.options().context, gib(engine.kv_bytes()), gib(f.engine.image_cache_bytes),
               gib(engine.vision_bytes()));
  http.attach(&engine, name.empty() ? "dsvl2" : name);
  std::fprintf(stderr, "dsvl2: serving %s at http://%s:%d/\n", f.model.c_str(), f.http.host.c_str(), port);
  std::fflush(stderr);
  listener.join();
  listener = std::thread();
  g_server = nullptr;
  http.attach(nullptr, name);
  return 0;
}

Command reg("serve", "OpenAI-compatible vision server with continuous batching and a web page", [](CLI::App& app) {
  auto f = std::make_shared<ServeFlags>();
  app.add_option("-m,--model", f->model, "Checkpoint folder or .gguf (tokenizer.json beside it)")->required();
  app.add_option("--host", f->http.host, "Address to bind (default 127.0.0.1: this machine only)");
  app.add_option("--port", f->http.port, "Port (0: any free port; the ready line names it)")->check(CLI::Range(0, 65535));
  app.add_option("--parallel", f->engine.parallel, "Slots: requests run at once (default 4)")->check(CLI::Range(1, 256));
  app.add_option("-c,--ctx", f->engine.context, "Context positions per slot (default 4096)")->check(CLI::Range(16, 1 << 20));
  app.add_option("--api-key", f->http.api_key, "Require Authorization: Bearer KEY (not on / and /health)");
  app.add_option("--api-key-file", f->api_key_file, "Read the API key from the first line of a file");
  app.add_option("--image-cache-mb", f->image_cache_mb, "Image-embedding cache size in MiB (default 256)")
      ->check(CLI::Range(0.0, 1e6));
  app.add_option("--allow-files", f->allow_files, "Allow file:// image URLs under this folder");
  app.add_option("--queue", f->engine.queue_limit, "Requests that may wait for a slot; more get 503 (default 16)")
      ->check(CLI::Range(0, 100000));
  app.add_option("--max-body-mb", f->max_body_mb, "Largest request body in MiB (default 32)")->check(CLI::Range(0.001, 4096.0));
  app.add_option("--max-images", f->http.limits.max_images, "Images per request (default 4)")->check(CLI::Range(0, 64));
  app.add_option("--max-pixels", f->http.limits.max_pixels, "Pixels per image, checked before decoding (default 16M)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 32));
  app.add_option("--max-tokens-limit", f->http.limits.max_tokens, "Largest max_tokens a client may ask (default 4096)")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--timeout", f->engine.timeout_s, "Wall-time limit per request in seconds (default 600)")
      ->check(CLI::Range(0.1, 1e7));
  app.add_option("--cors", f->http.cors_origin, "Allow this browser origin (CORS is off by default)");
  app.add_option("--compute", f->compute, "Numeric mode: bf16 (default) or f32");
  app.add_option("-t,--threads", f->threads, "Compute threads (default: all cores)");
  app.add_option("--prefill-chunk", f->engine.prefill_chunk, "Prompt rows per step when nothing decodes (default 512)")
      ->check(CLI::Range(1, 1 << 16));
  app.add_option("--prefill-chunk-decoding", f->engine.prefill_chunk_decoding,
                 "Prompt rows per step while others decode (default 8)")
      ->check(CLI::Range(1, 1 << 16));
  app.add_flag("--no-repack", f->no_repack, "Run from the mapped checkpoint instead of repacking");
  return std::function<int()>([f] { return serve_main(*f); });
});

}  // namespace
}  // namespace dsvl2::cli
