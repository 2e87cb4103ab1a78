// kvsieve report: tables and charts from a `kvsieve eval` results file.
#include <cstdio>

#include "cli_common.h"
#include "commands.h"

namespace kvsieve::cli {
namespace {

struct ReportOptions {
  std::string results, svg_dir;
};

int run(const ReportOptions& o) {
  const EvalReport r = make_eval_report(o.results, o.svg_dir);
  std::fputs(r.markdown.c_str(), stdout);
  if (!r.svg_files.empty())
    std::fprintf(stderr, "kvsieve: wrote %zu SVG charts to %s\n", r.svg_files.size(), o.svg_dir.c_str());
  return 0;
}

KVSIEVE_COMMAND(55, [](CLI::App& app) -> std::function<int()> {
  auto o = std::make_shared<ReportOptions>();
  auto* sub = app.add_subcommand("report", "Tables and SVG charts from `kvsieve eval` results");
  sub->add_option("results", o->results, "Results file (JSON lines from kvsieve eval)")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("--svg", o->svg_dir, "Folder for the SVG charts (default: none)");
  return [o] { return run(*o); };
});

}  // namespace
}  // namespace kvsieve::cli
