// Small SVG charts for the reports: lines of score against budget, and heat
// maps (Needle in a Haystack: depth x length). Self-contained files, no fonts
// or scripts needed to view them.
#pragma once
#include <string>
#include <vector>

namespace kvsieve::eval {

struct Series {
  std::string name;
  std::vector<double> x, y;
  bool dashed = false;  // reference lines (the full cache)
};

// x on a log2 axis when every x > 0 and log_x; y in [0, 1] shown as percent.
std::string line_chart_svg(const std::string& title, const std::string& x_label,
                           const std::string& y_label, const std::vector<Series>& series,
                           bool log_x);

// values[r][c] in [0, 1] (NaN: no data); row and column labels.
std::string heat_map_svg(const std::string& title, const std::vector<std::string>& rows,
                         const std::vector<std::string>& cols,
                         const std::vector<std::vector<double>>& values,
                         const std::string& row_label, const std::string& col_label);

}  // namespace kvsieve::eval
