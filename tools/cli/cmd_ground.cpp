// `dsvl2 ground`: visual grounding. With --parse it needs no model: it reads
// model output text on stdin and prints the parsed boxes as one JSON object.
//
//   echo '<|ref|>cat<|/ref|><|det|>[[1, 2, 3, 4]]<|/det|>' | dsvl2 ground --parse --width 640 --height 480
//   dsvl2 ground --parse --image photo.jpg --out boxes.png < answer.txt
//   dsvl2 ground -m MODEL_DIR --image photo.jpg --query "the red car" --out boxes.png --json
#include <cstdio>
#include <iostream>
#include <iterator>

#include "command.h"
#include "core/error.h"
#include "ground/box_drawer.h"
#include "ground/canvas.h"
#include "ground/grounding_parser.h"
#include "ground/pipeline.h"
#include "gen_options.h"
#include "image/image.h"
#include "model/chat_session.h"

namespace dsvl2::cli {
namespace {

struct GroundOptions {
  bool parse = false, json = false;
  int width = -1, height = -1;
  std::string model, image, query, out, mode = "locate";
  GenFlags gen;  // generation settings (the model folder comes from --model)
};

constexpr size_t kMaxStdin = 64u << 20;

std::string read_stdin() {
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) {
    text.append(buf, n);
    DSVL2_REQUIRE(text.size() <= kMaxStdin, "stdin: model output larger than %zu bytes", kMaxStdin);
  }
  DSVL2_REQUIRE(!std::ferror(stdin), "stdin: read error");
  return text;
}

int run_parse(const GroundOptions& o) {
  Image img;
  int w = o.width, h = o.height;
  if (!o.image.empty()) {
    img = load_image(o.image);
    if (w < 0) w = img.width;
    if (h < 0) h = img.height;
  }
  DSVL2_REQUIRE(w >= 0 && h >= 0, "ground --parse needs --width and --height (or --image)");
  DSVL2_REQUIRE(o.out.empty() || !o.image.empty(), "ground --parse: --out needs --image to draw on");
  ground::ParseResult r = ground::parse_grounding(read_stdin(), w, h);
  std::printf("%s\n", ground::to_json_string(r).c_str());
  if (!o.out.empty()) ground::save_png(ground::draw_boxes(img, r.objects), o.out);
  return 0;
}

int run_model(const GroundOptions& o) {
  GenFlags g = o.gen;
  g.model = o.model;
  g.quiet = g.quiet || o.json;
  GenerateRequest req = g.request();
  Image img = load_image(o.image);
  VisionLanguageModel model(o.model);
  ThreadPool pool(g.threads);
  Ops ops{&kernels_best(), &pool, g.compute_mode()};
  g.prepare(model, ops);
  ChatSession chat(model, ops, {g.context, g.system});
  // Stop a <|det|> block that runs away (endless digits or boxes).
  auto guard = std::make_shared<ground::RunawayGuard>();
  req.guard = [guard](std::string_view piece) { return guard->feed(piece); };
  ground::GroundingMode mode = o.mode == "ref"            ? ground::GroundingMode::kRefOnly
                               : o.mode == "conversation" ? ground::GroundingMode::kGroundedConversation
                                                          : ground::GroundingMode::kLocate;
  ground::GroundingRun run = ground::ground_query(
      img, o.query,
      [&](const std::string& user) {
        GenerateResult r = chat.ask(user, {img}, req, nullptr);
        return r.text;
      },
      mode, !o.out.empty());
  if (guard->stopped()) status(g, "stopped a runaway <|det|> block: %s", guard->reason().c_str());
  if (o.json) {
    std::printf("%s\n", ground::to_json_string(run.parsed).c_str());
  } else {
    std::printf("%s\n", run.output.c_str());
    for (const auto& obj : run.parsed.objects)
      std::printf("%s: [%d, %d, %d, %d] -> pixels [%d, %d, %d, %d]\n", obj.label ? obj.label->c_str() : "(no label)",
                  obj.box[0], obj.box[1], obj.box[2], obj.box[3], obj.box_px[0], obj.box_px[1], obj.box_px[2],
                  obj.box_px[3]);
  }
  if (!o.out.empty() && run.drawn) ground::save_png(*run.drawn, o.out);
  return 0;
}

Command reg("ground", "Visual grounding: parse model output into boxes (--parse), or ask the model to locate a query",
            [](CLI::App& app) {
              auto o = std::make_shared<GroundOptions>();
              app.add_flag("--parse", o->parse, "Parse model output text from stdin (no model needed)");
              app.add_option("--width", o->width, "Original image width in pixels (with --parse)")
                  ->check(CLI::Range(0, 1 << 30));
              app.add_option("--height", o->height, "Original image height in pixels (with --parse)")
                  ->check(CLI::Range(0, 1 << 30));
              app.add_option("-m,--model", o->model, "Checkpoint folder");
              app.add_option("--image", o->image, "Image file (its size replaces --width/--height)");
              app.add_option("--query", o->query, "What to locate, e.g. \"the red car\"");
              app.add_option("--mode", o->mode, "Prompt: locate (paper), ref (README), conversation (<|grounding|>)")
                  ->check(CLI::IsMember({"locate", "ref", "conversation"}));
              app.add_option("--out", o->out, "Write the image with boxes and labels to this PNG");
              app.add_flag("--json", o->json, "Print the parsed boxes as JSON");
              app.add_option("-n,--max-tokens", o->gen.max_new_tokens, "Most new tokens (default 512)");
              app.add_option("-t,--threads", o->gen.threads, "Threads (default: all cores)");
              app.add_option("--compute", o->gen.compute, "Numeric mode: bf16 (default) or f32");
              app.add_option("-c,--ctx", o->gen.context, "Context length (default: the model's)");
              return std::function<int()>([o] {
                if (o->parse) return run_parse(*o);
                DSVL2_REQUIRE(!o->model.empty() && !o->image.empty() && !o->query.empty(),
                              "ground needs -m MODEL --image FILE --query TEXT (or --parse to read model output)");
                return run_model(*o);
              });
            });

}  // namespace
}  // namespace dsvl2::cli
