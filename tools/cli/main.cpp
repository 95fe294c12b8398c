// dsvl2: command-line front end. Thin: parses flags and calls the library.
#include <clocale>
#include <cstdio>
#include <map>

#include "command.h"
#include "core/error.h"
#include "core/heap.h"

namespace dsvl2::cli {

std::vector<CommandEntry>& command_registry() {
  static std::vector<CommandEntry> r;
  return r;
}

Command::Command(std::string name, std::string help, Setup setup) {
  command_registry().push_back({std::move(name), std::move(help), std::move(setup)});
}

}  // namespace dsvl2::cli

namespace {
// Exit codes by error kind (documented in the README): 1 invalid input,
// 3 too long, 4 out of resources, 5 internal. CLI11 uses its own for flags.
int exit_code(dsvl2::ErrorKind k) {
  switch (k) {
    case dsvl2::ErrorKind::kInvalidInput: return 1;
    case dsvl2::ErrorKind::kTooLong: return 3;
    case dsvl2::ErrorKind::kOutOfResources: return 4;
    case dsvl2::ErrorKind::kInternal: return 5;
  }
  return 5;
}
}  // namespace

int main(int argc, char** argv) {
  using namespace dsvl2::cli;
  dsvl2::keep_freed_activations();
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
    return exit_code(e.kind());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "dsvl2: error: out of memory\n");
    return exit_code(dsvl2::ErrorKind::kOutOfResources);
  } catch (const std::exception& e) {  // e.g. std::filesystem errors: one line, never an abort
    std::fprintf(stderr, "dsvl2: error: %s\n", e.what());
    return exit_code(dsvl2::ErrorKind::kInternal);
  }
  return 0;
}
