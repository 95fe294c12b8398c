// `dsvl2 run`: one question about zero or more images, answer streamed to stdout.
#include <chrono>
#include <cstdio>

#include "command.h"
#include "core/error.h"
#include "gen_options.h"
#include "ground/visual_prompt.h"
#include "model/chat_session.h"

namespace dsvl2::cli {
namespace {

struct RunFlags {
  GenFlags gen;
  std::vector<std::string> images;
  std::string prompt;
  // Visual prompt drawn on the first image before asking (ViP-LLaVA shapes).
  std::string vp_shape, vp_box, vp_color;
  uint64_t vp_seed = 0;
};

// Draws the visual prompt on images[0]; returns the phrase that names it
// ("the red ellipse"), which replaces {mark} in the prompt.
std::string draw_visual_prompt(const RunFlags& f, std::vector<Image>& images) {
  if (f.vp_shape.empty()) return "";
  if (images.empty()) DSVL2_FAIL("--visual-prompt needs an --image to draw on");
  if (f.vp_box.empty()) DSVL2_FAIL("--visual-prompt needs --vp-box x1,y1,x2,y2 (pixels)");
  ground::Shape shape = ground::parse_shape(f.vp_shape);
  ground::Region region;
  region.box = ground::parse_box(f.vp_box);
  Rng rng(f.vp_seed);
  ground::Color color = f.vp_color.empty() ? ground::random_color(rng) : ground::parse_color(f.vp_color);
  ground::DrawnPrompt drawn;
  images[0] = ground::render_visual_prompt(images[0], shape, color, region, rng, {}, &drawn);
  return drawn.phrase;
}

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run(const RunFlags& f) {
  GenerateRequest req = f.gen.request();
  Compute compute = f.gen.compute_mode();
  // Decode the images first: a bad file fails before the model is loaded.
  std::vector<Image> images;
  for (const auto& p : f.images) images.push_back(load_image(p));

  std::string prompt = f.prompt;
  std::string phrase = draw_visual_prompt(f, images);
  if (!phrase.empty()) {
    status(f.gen, "visual prompt drawn: %s", phrase.c_str());
    for (size_t at; (at = prompt.find("{mark}")) != std::string::npos;) prompt.replace(at, 6, phrase);
  }
  auto t0 = std::chrono::steady_clock::now();
  VisionLanguageModel model(f.gen.model);
  ThreadPool pool(f.gen.threads);
  Ops ops{&kernels_best(), &pool, compute};
  f.gen.prepare(model, ops);
  status(f.gen, "loaded %s in %.2f s", f.gen.model.c_str(), since(t0));
  ChatSession chat(model, ops, {f.gen.context, f.gen.system});
  chat.set_progress(encode_progress_bar(f.gen));
  if (!images.empty()) status(f.gen, "encoding %zu image(s) ...", images.size());
  TurnStats st;
  GenerateResult g = chat.ask(
      prompt, std::move(images), req,
      print_stream,
      &st);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  status(f.gen, "encode %.2f s (%d tiles) | prefill %d tokens %.2f s (%.1f tok/s) | decode %zu tokens %.2f s (%.2f tok/s) | %s",
         st.encode_s, st.image_tiles, g.prompt_tokens, g.prefill_s, g.prefill_s > 0 ? g.prompt_tokens / g.prefill_s : 0.0,
         g.ids.size(), g.decode_s, g.decode_s > 0 ? double(g.ids.size()) / g.decode_s : 0.0, g.finish_reason.c_str());
  return 0;
}

Command reg("run", "Answer one prompt about zero or more images, streaming the text", [](CLI::App& app) {
  auto f = std::make_shared<RunFlags>();
  f->gen.add_to(app);
  app.add_option("--image", f->images, "Image file (repeat for several)");
  app.add_option("-p,--prompt", f->prompt, "The question or instruction ({mark} names a visual prompt)")->required();
  app.add_option("--visual-prompt", f->vp_shape,
                 "Draw a mark on the first image first: rectangle|ellipse|triangle|point|scribble|contour|mask|arrow");
  app.add_option("--vp-box", f->vp_box, "Region of the visual prompt, x1,y1,x2,y2 in pixels");
  app.add_option("--vp-color", f->vp_color, "Colour of the visual prompt (name or R,G,B; default random)");
  app.add_option("--vp-seed", f->vp_seed, "Seed for the visual prompt's random parameters");
  return std::function<int()>([f] { return run(*f); });
});

}  // namespace
}  // namespace dsvl2::cli
