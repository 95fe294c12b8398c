#include "synth/synth_job.h"

#include <chrono>
#include <filesystem>
#include <optional>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file.h"
#include "core/rng.h"
#include "ground/canvas.h"
#include "jobs/progress.h"
#include "jobs/shard_writer.h"
#include "synth/preview.h"

namespace dsvl2::synth {
namespace {

namespace fs = std::filesystem;

// The annotation files as sets: a refs file joins the COCO set before it.
std::vector<AnnotationSet> read_sets(const std::vector<std::string>& files) {
  std::vector<AnnotationSet> sets;
  for (const std::string& f : files) {
    AnnotationSet* coco = sets.empty() ? nullptr : &sets.back();
    AnnotationSet s = read_annotations(f, coco);
    if (!s.images.empty() || !s.errors.empty() || !s.categories.empty()) sets.push_back(std::move(s));
  }
  return sets;
}

}  // namespace

int choose_task(const std::vector<Task>& tasks, const std::map<Task, double>& mix, uint64_t seed,
                const AnnotatedImage& img, const TaskContext& ctx) {
  std::vector<std::pair<Task, double>> options;
  double total = 0;
  for (Task t : tasks) {
    auto it = mix.find(t);
    const double w = it == mix.end() ? 1.0 : it->second;
    if (w > 0 && applicable(t, img, ctx)) {
      options.emplace_back(t, w);
      total += w;
    }
  }
  if (options.empty()) return -1;
  Rng rng(seed, hash_string(img.source, uint64_t(img.id)) ^ 0x7a5c);
  double x = rng.uniform01() * total;
  for (const auto& [t, w] : options) {
    if (x < w) return int(t);
    x -= w;
  }
  return int(options.back().first);
}

SynthStats run_synth(const SynthOptions& o) {
  DSVL2_REQUIRE(!o.tasks.empty(), "synth: no tasks (--tasks vip,ground,gcg,icg,neg)");
  DSVL2_REQUIRE(!o.out_dir.empty() && !o.images_dir.empty(), "synth: --out and --images are required");
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<AnnotationSet> sets = read_sets(o.annotations);
  SynthStats st;
  for (const auto& s : sets) st.annotation_errors += int64_t(s.errors.size());

  fs::create_directories(o.out_dir);
  const std::string name = o.shard.name("synth");
  jobs::ShardWriter out(o.out_dir, name, o.resume);
  st.stats_path = o.out_dir + "/" + name + "_stats.json";
  int64_t total = 0;
  for (const auto& s : sets) total += int64_t(s.images.size());
  const int64_t owned = (total + o.shard.count - 1 - o.shard.index) / o.shard.count;  // round-robin share
  if (out.finished()) {  // an earlier run finished this shard: its stats stand
    st.images = st.skipped = owned;
    st.output = out.output_path();
    if (!fs::exists(st.stats_path)) {  // killed between the rename and the stats: from the ledger
      nlohmann::ordered_json j;
      j["shard"] = name;
      j["images"] = owned;
      j["records"] = out.items() - out.errors();
      j["errors"] = out.errors();
      write_file(st.stats_path, j.dump(2) + "\n");
    }
    return st;
  }
  std::string prefix = fs::relative(fs::absolute(o.images_dir), fs::absolute(o.out_dir)).generic_string();
  if (!prefix.empty() && prefix.back() != '/') prefix += '/';

  jobs::Progress progress("synth " + name, owned, o.quiet);
  std::vector<PreviewCell> cells;
  int64_t item = -1;
  for (const AnnotationSet& set : sets) {
    const TaskIndex index = build_task_index(set);
    TaskContext ctx{&set, o.images_dir, o.seed, prefix};
    ctx.index = &index;
    for (const AnnotatedImage& img : set.images) {
      item++;
      if (!o.shard.owns(size_t(item))) continue;
      st.images++;
      progress.advance();
      if (out.committed(item)) {
        st.skipped++;
        continue;
      }
      const int task = choose_task(o.tasks, o.mix, o.seed, img, ctx);
      if (task < 0) {
        out.add(item, "", "image " + std::to_string(img.id) + ": none of the tasks applies");
        st.errors++;
        continue;
      }
      // Only making the record may fail for this image alone. Writing its
      // images and line are the job's own work: an error there (a full
      // disk) stops the run, and --resume redoes the uncommitted items.
      std::optional<Record> r;
      std::string line, error;
      try {
        r = make_record(Task(task), img, ctx);
        line = record_json(*r);
      } catch (const Error& e) {
        if (e.kind() == ErrorKind::kOutOfResources) throw;
        error = "image " + std::to_string(img.id) + " (" + img.file_name + "): " + e.what();
      }
      if (!r || line.empty()) {
        out.add(item, "", error);
        st.errors++;
        continue;
      }
      for (const OutputImage& im : r->new_images) write_output_image(im, o.out_dir);
      out.add(item, line);
      st.records++;
      st.by_task[task_name(Task(task))]++;
      if (int(cells.size()) < o.preview) {
        try {
          cells.push_back(preview_cell(*r, o.out_dir));
        } catch (const Error&) {  // a preview is for looking at; it never fails a record
        }
      }
    }
  }
  st.output = out.finish();
  progress.finish();
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  nlohmann::ordered_json j;
  j["shard"] = name;
  j["images"] = st.images;
  // The whole shard's counts (the ledger's), and what this run made.
  j["records"] = out.items() - out.errors();
  j["errors"] = out.errors();
  j["this_run"] = {{"records", st.records}, {"errors", st.errors}, {"done_earlier", st.skipped}, {"by_task", st.by_task}};
  j["annotation_errors"] = st.annotation_errors;
  nlohmann::ordered_json examples = nlohmann::ordered_json::array();
  for (const auto& s : sets)
    for (const auto& e : s.errors) {
      if (examples.size() >= 100) break;
      examples.push_back({{"file", e.file}, {"what", e.what}});
    }
  for (const auto& [it, e] : out.new_errors()) {
    if (examples.size() >= 200) break;
    examples.push_back({{"item", it}, {"what", e}});
  }
  j["error_examples"] = examples;
  j["seconds"] = st.seconds;
  j["records_per_s"] = st.seconds > 0 ? double(st.records) / st.seconds : 0.0;
  write_file(st.stats_path, j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n");
  if (o.preview > 0 && !cells.empty()) {
    const std::string preview = o.out_dir + "/" + name + "_preview.png";
    ground::save_png(contact_sheet(cells), preview + ".tmp");
    fs::rename(preview + ".tmp", preview);
  }
  return st;
}

}  // namespace dsvl2::synth
