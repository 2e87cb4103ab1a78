// kvsieve judgeq-overlap: how much of the ideal keep set (the top positions
// by the model's own answer's attention) each method keeps, on held-out prompts.
#include <cstdio>
#include <sstream>

#include "cli_common.h"
#include "commands.h"
#include "core/error.h"
#include "train/overlap.h"

namespace kvsieve::cli {
namespace {

struct OverlapOptions {
  ModelOptions mo;
  std::string data, budgets = "64,128,256";
  std::vector<std::string> kv;
  int64_t response = 64;
};

int run(const OverlapOptions& o) {
  std::vector<int64_t> budgets;
  std::istringstream in(o.budgets);
  std::string x;
  while (std::getline(in, x, ','))
    if (!x.empty()) budgets.push_back(std::stoll(x));
  std::vector<std::string> methods;
  for (const auto& k : o.kv) {
    std::istringstream s(k);
    while (s >> x) methods.push_back(x);
  }
  if (methods.empty()) methods = {"snapkv"};
  auto model = o.mo.load();
  ThreadPool pool(o.mo.threads);
  const auto rows = keep_set_overlap(*model, pool, o.data, methods, budgets, o.response, true);
  std::printf("| method | budget | share of the ideal keep set kept | prompts |\n|---|---|---:|---:|\n");
  for (const auto& r : rows)
    std::printf("| %s | %lld | %.1f%% | %lld |\n", r.method.c_str(), (long long)r.budget,
                100 * r.overlap, (long long)r.prompts);
  return 0;
}

KVSIEVE_COMMAND(47, [](CLI::App& app) -> std::function<int()> {
  auto o = std::make_shared<OverlapOptions>();
  auto* sub = app.add_subcommand(
      "judgeq-overlap",
      "Share of the ideal keep set (top positions by the answer's attention) each method keeps");
  o->mo.add_to(sub);
  sub->add_option("--data", o->data, "Held-out prompts (JSON lines, as for train-judgeq)")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("--kv", o->kv, "Methods to compare (repeat, or space-separated); default snapkv");
  sub->add_option("--budgets", o->budgets, "Budgets, comma-separated")->capture_default_str();
  sub->add_option("--response-tokens", o->response, "Answer tokens that define the ideal")
      ->capture_default_str();
  return [o] { return run(*o); };
});

}  // namespace
}  // namespace kvsieve::cli
