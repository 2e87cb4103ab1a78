#include "eval/svg.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace kvsieve::eval {
namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                               "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"};

std::string header(int w, int h) {
  return fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n",
      w, h);
}

std::string text(double x, double y, const std::string& s, const char* anchor = "middle",
                 int size = 12, const char* extra = "") {
  return fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"{}\" font-size=\"{}\" {}>{}</text>\n",
                     x, y, anchor, size, extra, esc(s));
}

}  // namespace

std::string line_chart_svg(const std::string& title, const std::string& x_label,
                           const std::string& y_label, const std::vector<Series>& series,
                           bool log_x) {
  size_t longest = 0;
  for (const auto& s : series) longest = std::max(longest, s.name.size());
  const int R = std::max(170, int(longest) * 7 + 50);
  const int W = 550 + R, H = 440, L = 60, T = 40, B = 50;
  const double pw = W - L - R, ph = H - T - B;
  double xmin = INFINITY, xmax = -INFINITY;
  bool all_pos = true;
  for (const auto& s : series)
    for (double x : s.x) {
      xmin = std::min(xmin, x), xmax = std::max(xmax, x);
      all_pos = all_pos && x > 0;
    }
  if (!std::isfinite(xmin)) xmin = 0, xmax = 1;
  const bool lg = log_x && all_pos;
  auto fx = [&](double x) {
    const double a = lg ? std::log2(xmin) : xmin, b = lg ? std::log2(xmax) : xmax;
    const double v = lg ? std::log2(x) : x;
    return L + (b > a ? (v - a) / (b - a) : 0.5) * pw;
  };
  auto fy = [&](double y) { return T + (1.0 - std::clamp(y, 0.0, 1.0)) * ph; };
  std::string o = header(W, H);
  o += text(W / 2.0, 22, title, "middle", 15);
  for (int i = 0; i <= 5; ++i) {  // y grid
    const double y = fy(i / 5.0);
    o += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n", L, y,
                     L + pw, y);
    o += text(L - 6, y + 4, fmt::format("{}%", i * 20), "end");
  }
  std::vector<double> ticks;
  for (const auto& s : series) ticks.insert(ticks.end(), s.x.begin(), s.x.end());
  std::sort(ticks.begin(), ticks.end());
  ticks.erase(std::unique(ticks.begin(), ticks.end()), ticks.end());
  for (double x : ticks) {
    o += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#eee\"/>\n", fx(x),
                     T, T + ph);
    o += text(fx(x), T + ph + 16, fmt::format("{:g}", x));
  }
  o += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" stroke=\"#333\"/>\n",
                   L, T, pw, ph);
  o += text(L + pw / 2, H - 12, x_label);
  o += text(16, T + ph / 2, y_label, "middle", 12,
            fmt::format("transform=\"rotate(-90 16 {:.1f})\"", T + ph / 2).c_str());
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& s = series[i];
    const char* col = s.dashed ? "#000" : kColors[i % 10];
    std::string pts;
    for (size_t k = 0; k < s.x.size(); ++k) pts += fmt::format("{:.1f},{:.1f} ", fx(s.x[k]), fy(s.y[k]));
    o += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{}/>\n", pts,
                     col, s.dashed ? " stroke-dasharray=\"6 4\"" : "");
    for (size_t k = 0; k < s.x.size(); ++k)
      o += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", fx(s.x[k]), fy(s.y[k]),
                       col);
    const double ly = T + 14 + 18.0 * double(i);
    o += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" stroke-width=\"2\"{}/>\n",
                     L + pw + 12, ly - 4, L + pw + 32, ly - 4, col,
                     s.dashed ? " stroke-dasharray=\"6 4\"" : "");
    o += text(L + pw + 38, ly, s.name, "start");
  }
  return o + "</svg>\n";
}

std::string heat_map_svg(const std::string& title, const std::vector<std::string>& rows,
                         const std::vector<std::string>& cols,
                         const std::vector<std::vector<double>>& values,
                         const std::string& row_label, const std::string& col_label) {
  const int L = 80, T = 40, cw = std::max(40, 480 / std::max<int>(1, int(cols.size()))), ch = 28;
  const int W = std::max(L + cw * int(cols.size()) + 90, int(title.size()) * 8 + 40);
  const int H = T + ch * int(rows.size()) + 60;
  std::string o = header(W, H);
  o += text(W / 2.0, 22, title, "middle", 15);
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t c = 0; c < cols.size(); ++c) {
      const double v = values[r][c];
      // red (0) -> yellow -> green (1), grey for no data
      std::string fill = "#ccc";
      if (!std::isnan(v)) {
        const double t = std::clamp(v, 0.0, 1.0);
        const int red = int(t < 0.5 ? 220 : 220 - (t - 0.5) * 2 * 170);
        const int green = int(t < 0.5 ? 60 + t * 2 * 160 : 220 - (t - 0.5) * 2 * 60);
        fill = fmt::format("rgb({},{},60)", red, green);
      }
      const int x = L + int(c) * cw, y = T + int(r) * ch;
      o += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" stroke=\"white\"/>\n",
                       x, y, cw, ch, fill);
      if (!std::isnan(v)) o += text(x + cw / 2.0, y + ch / 2.0 + 4, fmt::format("{:.0f}", 100 * v), "middle", 10);
    }
    o += text(L - 6, T + int(r) * ch + ch / 2.0 + 4, rows[r], "end");
  }
  for (size_t c = 0; c < cols.size(); ++c)
    o += text(L + int(c) * cw + cw / 2.0, T + ch * int(rows.size()) + 16, cols[c]);
  o += text(L + cw * cols.size() / 2.0, T + ch * int(rows.size()) + 38, col_label);
  o += text(14, T + ch * rows.size() / 2.0, row_label, "middle", 12,
            fmt::format("transform=\"rotate(-90 14 {:.1f})\"", T + ch * rows.size() / 2.0).c_str());
  return o + "</svg>\n";
}

}  // namespace kvsieve::eval
