#include "commands.h"

#include <algorithm>
#include <map>

namespace kvsieve::cli {

std::vector<CommandDef>& registry() {
  static std::vector<CommandDef> r;
  return r;
}

namespace {
std::map<CLI::App*, std::function<int()>>& runners() {
  static std::map<CLI::App*, std::function<int()>> m;
  return m;
}
}  // namespace

void register_all(CLI::App& app) {
  auto defs = registry();
  std::stable_sort(defs.begin(), defs.end(),
                   [](const CommandDef& a, const CommandDef& b) { return a.order < b.order; });
  for (auto& d : defs) {
    const size_t before = app.get_subcommands({}).size();
    auto fn = d.setup(app);
    auto subs = app.get_subcommands({});
    if (subs.size() > before) runners()[subs.back()] = std::move(fn);
  }
}

int run_selected(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands())
    if (auto it = runners().find(sub); it != runners().end()) return it->second();
  return 1;
}

}  // namespace kvsieve::cli
