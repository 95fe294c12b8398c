// `dsvl2 chat`: an interactive conversation that keeps its KV cache across
// turns. Lines starting with / are commands: /image PATH, /clear, /quit.
#include <cstdio>
#include <iostream>

#include "command.h"
#include "core/error.h"
#include "gen_options.h"
#include "model/chat_session.h"

namespace dsvl2::cli {
namespace {

int chat_loop(const GenFlags& f) {
  GenerateRequest req = f.request();
  VisionLanguageModel model(f.model);
  ThreadPool pool(f.threads);
  Ops ops{&kernels_best(), &pool, f.compute_mode()};
  f.prepare(model, ops);
  ChatSession chat(model, ops, {f.context, f.system});
  chat.set_progress(encode_progress_bar(f));
  std::vector<Image> pending;
  status(f, "chat ready: type a message; /image PATH attaches an image, /clear resets, /quit ends");
  std::string line;
  while (true) {
    if (!f.quiet) std::fputs("> ", stderr);
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    if (line == "/quit" || line == "/exit") break;
    if (line == "/clear") {
      chat.clear();
      pending.clear();
      status(f, "conversation cleared");
      continue;
    }
    if (line.rfind("/image ", 0) == 0) {
      std::string path = line.substr(7);
      try {
        pending.push_back(load_image(path));
        status(f, "attached %s (%dx%d); it goes with your next message", path.c_str(), pending.back().width,
               pending.back().height);
      } catch (const Error& e) {
        std::fprintf(stderr, "dsvl2: error: %s\n", e.what());
      }
      continue;
    }
    try {
      TurnStats st;
      GenerateResult g = chat.ask(
          line, std::move(pending), req,
          print_stream,
          &st);
      pending.clear();
      std::fputc('\n', stdout);
      std::fflush(stdout);
      status(f, "%d new prompt tokens (%d reused from the cache), %zu generated, %.2f tok/s", st.new_prompt_tokens,
             st.reused_tokens, g.ids.size(), g.decode_s > 0 ? double(g.ids.size()) / g.decode_s : 0.0);
    } catch (const Error& e) {
      pending.clear();
      std::fprintf(stderr, "dsvl2: error: %s\n", e.what());
    }
  }
  return 0;
}

Command reg("chat", "Interactive conversation (keeps the KV cache across turns; /image PATH attaches)",
            [](CLI::App& app) {
              auto f = std::make_shared<GenFlags>();
              f->add_to(app);
              return std::function<int()>([f] { return chat_loop(*f); });
            });

}  // namespace
}  // namespace dsvl2::cli
