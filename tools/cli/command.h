// Subcommand registry for the `dsvl2` tool. Each cmd_<name>.cpp defines one
// subcommand and registers it with a static Command object:
//
//   static Command reg("preprocess", "Tile images as the official processor",
//                      [](CLI::App& app) -> std::function<int()> {
//     auto* opts = ...;  app.add_option(...);
//     return [opts] { ...; return 0; };
//   });
//
// The returned function runs when the subcommand is chosen; it returns the exit
// code. dsvl2::Error thrown from it is printed as one line and exits with 1.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace dsvl2::cli {

using Setup = std::function<std::function<int()>(CLI::App&)>;

struct Command {
  Command(std::string name, std::string help, Setup setup);
};

struct CommandEntry {
  std::string name, help;
  Setup setup;
};
std::vector<CommandEntry>& command_registry();

}  // namespace dsvl2::cli
