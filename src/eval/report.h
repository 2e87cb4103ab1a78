// `kvsieve report`: a results file of `kvsieve eval` as a markdown table
// (method x budget rows, the mean score per task and overall, the share of
// the KV cache kept; the full cache first as the reference) and SVG charts
// (score against budget per task and overall; a depth x length heat map per
// method and budget for tasks with needle depths).
#pragma once
#include <string>
#include <vector>

namespace kvsieve::eval {

struct Report {
  std::string markdown;
  std::vector<std::string> svg_files;  // written
  int64_t rows = 0, errors = 0;
};

// svg_dir empty: no charts. Throws Error for an unreadable file or one with
// no results.
Report make_report(const std::string& results_path, const std::string& svg_dir);

}  // namespace kvsieve::eval
