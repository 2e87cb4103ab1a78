#include <cstdio>

#include "commands.h"

namespace {
KVSIEVE_COMMAND(100, [](CLI::App& app) -> std::function<int()> {
  app.add_subcommand("version", "Print the kvsieve version");
  return [] {
    std::printf("kvsieve 0.1.0\n");
    return 0;
  };
});
}  // namespace
