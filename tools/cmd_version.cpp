// kvsieve version: the version and what this build runs on.
#include <cstdio>

#include "cli_common.h"
#include "commands.h"

namespace {
KVSIEVE_COMMAND(100, [](CLI::App& app) -> std::function<int()> {
  app.add_subcommand("version", "Print the kvsieve version and the devices this build runs on");
  return [] {
    std::printf("%s\n%s\n", kvsieve::version().c_str(), kvsieve::build_info().c_str());
    return 0;
  };
});
}  // namespace
