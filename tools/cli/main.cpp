// dsvl2: command-line front end. Thin: parses flags and calls the library.
#include <clocale>
#include <cstdio>
#include <map>

#include "command.h"
#include "core/error.h"

namespace dsvl2::cli {

std::vector<CommandEntry>& command_registry() {
  static std::vector<CommandEntry> r;
  return r;
}

Command::Command(std::string name, std::string help, Setup setup) {
  command_registry().push_back({std::move(name), std::move(help), std::move(setup)});
}

}  // namespace dsvl2::cli

int main(int argc, char** argv) {
  using namespace dsvl2::cli;
  CLI::App app{"dsvl2: DeepSeek-VL2 inference engine and toolkit (C++, CPU)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "dsvl2 0.1.0");
  std::map<CLI::App*, std::function<int()>> runs;
  auto& reg = command_registry();
  std::sort(reg.begin(), reg.end(), [](const CommandEntry& a, const CommandEntry& b) { return a.name < b.name; });
  for (auto& c : reg) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    runs[sub] = c.setup(*sub);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto& [sub, run] : runs)
      if (sub->parsed()) return run();
  } catch (const dsvl2::Error& e) {
    std::fprintf(stderr, "dsvl2: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "dsvl2: error: out of memory\n");
    return 1;
  }
  return 0;
}
