// Images per hour of `recaption` (the whole job: tar reading, decode, EXIF,
// OCR, vision, captioning with continuous batching, the quality judge, the
// OCR check, the resumable tar writer), OCR seconds per image, and the
// ledger's share of the wall time, for 384x384 images that carry a line of
// text, captions forced to exactly N tokens.
//
//   bench_recaption MODEL [images=16] [tokens=128] [threads=2] [batch=8]
//
// MODEL: a checkpoint folder or .gguf (e.g. `dsvl2 make-random-checkpoint
// --preset tiny` then `dsvl2 quantize ... q4_0`), with tokenizer.json.
#include <cairo.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/file.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "dataset/tar_writer.h"
#include "ground/canvas.h"
#include "jobs/shard_writer.h"
#include "recaption/recaption_job.h"

namespace dsvl2::recaption {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// A textured 384x384 image with a line of large text, as a PNG.
std::string text_image(int i, const std::string& dir) {
  Image img;
  img.width = img.height = 384;
  img.rgb.resize(384 * 384 * 3);
  Rng rng{uint64_t(i)};
  for (size_t p = 0; p < img.rgb.size(); p++) img.rgb[p] = uint8_t(150 + rng.randint(0, 60));
  ground::Canvas c(img);
  cairo_t* cr = c.cr();
  cairo_set_font_face(cr, ground::label_font_face());
  cairo_set_font_size(cr, 40);
  cairo_set_source_rgb(cr, 0.1, 0.1, 0.3);
  cairo_move_to(cr, 30, 120 + 20 * (i % 5));
  const char* words[] = {"GRAND OPENING", "NO PARKING", "FRESH BREAD", "CITY MUSEUM", "EXIT ONLY"};
  cairo_show_text(cr, words[i % 5]);
  const std::string path = dir + "/img" + std::to_string(i) + ".png";
  ground::save_png(c.to_image(), path);
  return read_file(path);
}

// Seconds the ledger and the fsyncs take for `n` records of `bytes` each,
// committed every 4 records as the job does.
double ledger_seconds(const std::string& dir, int n, size_t bytes) {
  std::filesystem::remove_all(dir);
  const std::string record(bytes, 'x');
  const auto t0 = Clock::now();
  jobs::ShardWriter w(dir, "ledger", false, 4, ".tar");
  for (int i = 0; i < n; i++) w.add_raw(i, record);
  w.finish();
  return since(t0);
}

}  // namespace
}  // namespace dsvl2::recaption

int main(int argc, char** argv) {
  using namespace dsvl2;
  using namespace dsvl2::recaption;
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_recaption MODEL [images=16] [tokens=128] [threads=2] [batch=8]\n");
    return 2;
  }
  const int n = argc > 2 ? std::atoi(argv[2]) : 16, tokens = argc > 3 ? std::atoi(argv[3]) : 128;
  const int threads = argc > 4 ? std::atoi(argv[4]) : 2, batch = argc > 5 ? std::atoi(argv[5]) : 8;
  const std::string dir = std::filesystem::temp_directory_path() / "dsvl2_bench_recaption";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir + "/img");
  std::string tar;
  for (int i = 0; i < n; i++) {
    const std::string key = std::to_string(100000 + i);
    tar += dataset::tar_member(key + ".png", text_image(i, dir + "/img"));
    tar += dataset::tar_member(key + ".txt", "a sign on a wall");
  }
  write_file(dir + "/bench-00000.tar", tar + dataset::tar_end());

  const auto t_load = Clock::now();
  VisionLanguageModel model(argv[1]);
  ThreadPool pool(threads);
  Ops ops{&kernels_best(), &pool, Compute::kBF16};
  model.make_ready(ops);
  std::printf("model %s loaded in %.1f s, %d threads, batch %d\n", argv[1], since(t_load), threads, batch);

  RecaptionOptions o;
  o.inputs = {dir + "/bench-00000.tar"};
  o.out_dir = dir + "/out";
  o.quiet = true;
  o.slots = batch;
  o.request.max_new_tokens = tokens;
  o.request.stop_strings = {};  // exactly `tokens` tokens a caption (random weights rarely say EOS anyway)
  const auto t0 = Clock::now();
  const RecaptionStats st = run_recaption(model, ops, o);
  const double wall = since(t0);
  const nlohmann::json stats = nlohmann::json::parse(read_file(dir + "/out/bench-00000_stats.json"));
  const double ledger = ledger_seconds(dir + "/ledger", int(st.records), 4096);
  std::printf("records %lld (failed %lld) in %.1f s: %.0f images/hour\n", (long long)st.records, (long long)st.errors,
              wall, double(st.records) * 3600.0 / wall);
  std::printf("mean seconds per image: ocr %.3f  encode %.3f  caption %.3f  quality %.3f (stage latencies; the\n"
              "stages overlap across the batch, so they do not add up to the wall time per image)\n",
              stats["mean_seconds"]["ocr"].get<double>(), stats["mean_seconds"]["encode"].get<double>(),
              stats["mean_seconds"]["caption"].get<double>(), stats["mean_seconds"]["quality"].get<double>());
  std::printf("caption tokens %lld; ledger + fsync for %lld records: %.3f s = %.2f %% of the wall time\n",
              (long long)stats["caption_tokens"].get<int64_t>(), (long long)st.records, ledger, 100.0 * ledger / wall);
  std::filesystem::remove_all(dir);
  return 0;
}
