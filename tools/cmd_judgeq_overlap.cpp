// kvsieve judgeq-overlap: how much of the ideal keep set (the top positions
// by the model's own answer's attention) each method keeps, on held-out prompts.
#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "cli_common.h"
#include "commands.h"

namespace kvsieve::cli {
namespace {

struct OverlapOptions {
  ModelOptions mo;
  std::string data, budgets = "64,128,256";
  std::vector<std::string> kv;
  OverlapConfig cfg;
};

int run(OverlapOptions& o) {
  o.cfg.budgets = numbers<int64_t>(o.budgets, "--budgets");
  check(!o.cfg.budgets.empty(), "--budgets: give at least one budget");
  for (int64_t b : o.cfg.budgets) check(b > 0, "--budgets must be positive");
  check(o.cfg.max_response > 0, "--response-tokens must be positive");
  for (const auto& k : o.kv)
    for (const auto& spec : split(k, " ")) o.cfg.methods.push_back(spec);
  if (o.cfg.methods.empty()) o.cfg.methods = {"snapkv"};
  o.cfg.progress = true;
  auto engine = o.mo.load();
  const auto rows = keep_set_overlap(*engine, o.data, o.cfg);
  const std::string& first = o.cfg.methods.front();
  std::printf("%s: share of the ideal keep set kept (± standard error over prompts)\n\n"
              "| method | budget | overlap | vs %s, paired | attention kept | paired | prompts |\n"
              "|---|---|---:|---:|---:|---:|---:|\n",
              o.cfg.query_agnostic ? "query-agnostic (cut after the context)" : "query-aware (cut after the question)",
              first.c_str());
  for (const auto& r : rows) {
    const auto paired = [&](double d, double se) {
      return r.method == first ? std::string("-") : fmt::format("{:+.1f} ± {:.1f}", 100 * d, 100 * se);
    };
    std::printf("| %s | %lld | %.1f%% ± %.1f | %s | %.1f%% ± %.1f | %s | %lld |\n", r.method.c_str(),
                (long long)r.budget, 100 * r.overlap, 100 * r.overlap_se, paired(r.vs_first, r.vs_first_se).c_str(),
                100 * r.mass, 100 * r.mass_se, paired(r.mass_vs_first, r.mass_vs_first_se).c_str(),
                (long long)r.prompts);
  }
  std::printf("\noverlap: the share of the ideal set's positions kept; attention kept: the share of its "
              "attention mass kept (the answer's attention over the kept positions / over the ideal ones).\n"
              "paired: the mean over prompts of the method's figure minus %s's on the same prompt, in points; "
              "a difference beyond about twice its error is unlikely to be chance.\n",
              first.c_str());
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
  sub->add_option("--kv", o->kv,
                  "Methods to compare (repeat, or space-separated; the first is the one the others are "
                  "compared with, prompt by prompt); default snapkv");
  sub->add_option("--budgets", o->budgets, "Budgets, comma-separated")->capture_default_str();
  sub->add_option("--response-tokens", o->cfg.max_response, "Answer tokens that define the ideal")
      ->capture_default_str();
  sub->add_flag("--query-agnostic", o->cfg.query_agnostic,
                "Cut after the context, before the question is read (the ideal: the answer's "
                "attention over the context)");
  return [o] { return run(*o); };
});

}  // namespace
}  // namespace kvsieve::cli
