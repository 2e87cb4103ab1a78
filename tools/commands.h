// Subcommand registry. Each tools/cmd_*.cpp defines one subcommand and
// registers it with a static KVSIEVE_COMMAND object, so adding a command never
// edits a central list.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace kvsieve::cli {

struct CommandDef {
  // Adds the subcommand and its options to `app`; returns the function that
  // runs it (capturing the option storage) and gives the exit code.
  std::function<std::function<int()>(CLI::App& app)> setup;
  int order;  // position in --help
};

std::vector<CommandDef>& registry();

struct Registrar {
  Registrar(int order, std::function<std::function<int()>(CLI::App&)> setup) {
    registry().push_back({std::move(setup), order});
  }
};

void register_all(CLI::App& app);
int run_selected(CLI::App& app);

}  // namespace kvsieve::cli

#define KVSIEVE_CONCAT2(a, b) a##b
#define KVSIEVE_CONCAT(a, b) KVSIEVE_CONCAT2(a, b)
#define KVSIEVE_COMMAND(order, fn) \
  static ::kvsieve::cli::Registrar KVSIEVE_CONCAT(kvsieve_cmd_, __LINE__)(order, fn)
