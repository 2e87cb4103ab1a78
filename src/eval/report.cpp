#include "eval/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "eval/svg.h"

namespace kvsieve::eval {
namespace {

using nlohmann::json;

struct Row {
  std::string task, label, method;
  bool full = false;
  double x = 0;  // budget in tokens, or the kept fraction for ratios
  std::string budget;  // as shown
  int64_t length = 0;
  double depth = -1, score = 0, kv_share = 1;
  double kv_bytes = 0;  // the cache this prompt kept, all layers and heads
  double kl = NAN, top1 = NAN, ppl = NAN;
};

struct Mean {
  double sum = 0;
  int64_t n = 0;
  void add(double v) { sum += v, ++n; }
  double get() const { return n ? sum / double(n) : NAN; }
};

std::string cell(double v, int digits = 1) {
  return std::isnan(v) ? "-" : fmt::format("{:.{}f}", v, digits);
}

std::string file_safe(std::string s) {
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') c = '_';
  return s;
}

}  // namespace

Report make_report(const std::string& path, const std::string& svg_dir) {
  std::ifstream in(path);
  check(bool(in), "cannot read '{}'", path);
  Report rep;
  std::vector<Row> rows;
  std::vector<std::string> tasks, groups;  // in order of appearance
  std::map<std::string, std::pair<std::string, bool>> group_info;  // label -> method, full
  std::map<std::string, int> mode_count;
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception&) {
      fail("'{}' line {}: not JSON (is this a kvsieve eval results file?)", path, line_no);
    }
    ++rep.rows;
    if (j.contains("error")) {
      ++rep.errors;
      continue;
    }
    Row r;
    try {
      r.task = j.at("task").get<std::string>();
      r.method = j.at("method").get<std::string>();
      r.full = r.method == "full";
      const std::string spec = j.value("kv", j.at("spec").get<std::string>());
      if (j.contains("ratio")) {
        const double ratio = j.at("ratio").get<double>();
        r.budget = fmt::format("r={:g}", ratio);
        r.x = 1.0 - ratio;
      } else if (j.at("budget").is_number()) {
        r.x = j.at("budget").get<double>();
        r.budget = fmt::format("{:g}", r.x);
      } else {
        r.budget = "-";
      }
      const std::string mode = j.value("mode", "aware") + "/" + j.value("granularity", "kv-head");
      ++mode_count[mode];
      r.label = spec + "|" + mode;
      r.length = j.at("length").get<int64_t>();
      r.depth = j.value("depth", -1.0);
      r.score = j.at("score").get<double>();
      const double full_b = j.at("kv_bytes_full").get<double>();
      r.kv_bytes = j.at("kv_bytes").get<double>();
      r.kv_share = full_b > 0 ? r.kv_bytes / full_b : 1.0;
      if (j.contains("kl")) {
        r.kl = j.at("kl").get<double>();
        r.top1 = j.at("top1").get<double>();
        r.ppl = j.at("ppl").get<double>();
      }
      const std::string key = r.label + "|" + r.budget;
      if (!group_info.count(key)) {
        groups.push_back(key);
        group_info[key] = {r.method, r.full};
      }
    } catch (const json::exception& e) {
      fail("'{}' line {}: {}", path, line_no, e.what());
    }
    if (std::find(tasks.begin(), tasks.end(), r.task) == tasks.end()) tasks.push_back(r.task);
    rows.push_back(std::move(r));
  }
  check(!rows.empty(), "'{}' holds no results", path);
  const bool several_modes = mode_count.size() > 1;
  // Full cache first (one row per mode), then methods in order of appearance,
  // budgets ascending.
  std::stable_sort(groups.begin(), groups.end(), [&](const std::string& a, const std::string& b) {
    return group_info[a].second > group_info[b].second;
  });
  std::map<std::string, double> group_x;
  for (const Row& r : rows) group_x[r.label + "|" + r.budget] = r.x;
  std::stable_sort(groups.begin(), groups.end(), [&](const std::string& a, const std::string& b) {
    const std::string la = a.substr(0, a.rfind('|')), lb = b.substr(0, b.rfind('|'));
    if (group_info[a].second != group_info[b].second) return group_info[a].second;
    if (la != lb) return false;  // keep method order
    return group_x[a] < group_x[b];
  });
  auto shown = [&](const std::string& g) {
    std::string spec = g.substr(0, g.find('|'));
    const std::string mode = g.substr(g.find('|') + 1, g.rfind('|') - g.find('|') - 1);
    return several_modes ? spec + " (" + mode + ")" : spec;
  };

  // mean score [group][task], kv share and bytes [group]
  std::map<std::string, std::map<std::string, Mean>> score;
  std::map<std::string, Mean> kv, kv_mib, kl, top1, ppl;
  for (const Row& r : rows) {
    const std::string g = r.label + "|" + r.budget;
    score[g][r.task].add(r.score);
    kv[g].add(r.kv_share);
    kv_mib[g].add(r.kv_bytes / (1024.0 * 1024.0));
    if (!std::isnan(r.kl)) kl[g].add(r.kl), top1[g].add(r.top1), ppl[g].add(r.ppl);
  }
  auto overall = [&](const std::string& g) {
    Mean m;
    for (const auto& t : tasks)
      if (score[g].count(t)) m.add(score[g][t].get());
    return m.get();
  };
  std::string md = "| method | budget |";
  std::string sep = "|---|---|";
  for (const auto& t : tasks) md += " " + t + " |", sep += "---:|";
  md += " overall | KV kept | KV MiB |\n" + sep + "---:|---:|---:|\n";
  for (const auto& g : groups) {
    md += "| " + shown(g) + " | " + g.substr(g.rfind('|') + 1) + " |";
    for (const auto& t : tasks)
      md += " " + (score[g].count(t) ? cell(100 * score[g][t].get()) : std::string("-")) + " |";
    md += " " + cell(100 * overall(g)) + " | " + cell(100 * kv[g].get()) + "% | " + cell(kv_mib[g].get(), 2) +
          " |\n";
  }
  if (!kl.empty()) {
    md += "\nFidelity to the full cache (mean over positions of the continuation):\n\n"
          "| method | budget | KL(full || method) | top-1 agreement | perplexity |\n"
          "|---|---|---:|---:|---:|\n";
    for (const auto& g : groups)
      if (kl.count(g))
        md += "| " + shown(g) + " | " + g.substr(g.rfind('|') + 1) + " | " + cell(kl[g].get(), 4) +
              " | " + cell(100 * top1[g].get()) + "% | " + cell(ppl[g].get(), 2) + " |\n";
  }
  md += fmt::format("\nScores in percent; KV kept: the cache left after the cut, as a share of the full "
                    "cache and in MiB per prompt (mean over prompts); {} result rows{}.\n",
                    rep.rows,
                    rep.errors ? fmt::format(", {} with errors left out", rep.errors) : "");
  rep.markdown = md;

  if (svg_dir.empty()) return rep;
  std::filesystem::create_directories(svg_dir);
  auto write = [&](const std::string& name, const std::string& svg) {
    const std::string p = (std::filesystem::path(svg_dir) / name).string();
    write_file_atomic(p, svg);
    rep.svg_files.push_back(p);
  };
  // Score against budget, per task and overall.
  std::vector<std::string> charts = tasks;
  if (tasks.size() > 1) charts.push_back("overall");
  for (const auto& t : charts) {
    std::map<std::string, Series> by_method;
    std::vector<std::string> order;
    double xmin = INFINITY, xmax = -INFINITY;
    for (const auto& g : groups)
      if (!group_info[g].second) xmin = std::min(xmin, group_x[g]), xmax = std::max(xmax, group_x[g]);
    for (const auto& g : groups) {
      const double y = t == "overall" ? overall(g) : (score[g].count(t) ? score[g][t].get() : NAN);
      if (std::isnan(y)) continue;
      const std::string label = g.substr(0, g.rfind('|'));
      if (!by_method.count(label)) {
        order.push_back(label);
        by_method[label].name = shown(g);
      }
      Series& s = by_method[label];
      if (group_info[g].second) {  // the full cache: a dashed line across
        if (std::isfinite(xmin)) s.x = {xmin, xmax}, s.y = {y, y};
        s.dashed = true;
      } else {
        s.x.push_back(group_x[g]);
        s.y.push_back(y);
      }
    }
    std::vector<Series> series;
    for (const auto& l : order)
      if (!by_method[l].x.empty()) series.push_back(by_method[l]);
    if (series.empty()) continue;
    const bool ratio_axis = std::isfinite(xmax) && xmax <= 1.0;
    write("score_vs_budget_" + file_safe(t) + ".svg",
          line_chart_svg(t == "overall" ? "Mean score over tasks" : "Score on " + t,
                         ratio_axis ? "share of the prompt kept" : "KV budget (tokens per head)",
                         "score", series, !ratio_axis));
  }
  // Depth x length heat maps.
  for (const auto& t : tasks) {
    std::vector<double> depths;
    std::vector<int64_t> lengths;
    for (const Row& r : rows)
      if (r.task == t && r.depth >= 0) {
        depths.push_back(r.depth);
        lengths.push_back(r.length);
      }
    if (depths.empty()) continue;
    std::sort(depths.begin(), depths.end());
    depths.erase(std::unique(depths.begin(), depths.end()), depths.end());
    std::sort(lengths.begin(), lengths.end());
    lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());
    for (const auto& g : groups) {
      std::map<std::pair<double, int64_t>, Mean> cellv;
      for (const Row& r : rows)
        if (r.task == t && r.label + "|" + r.budget == g && r.depth >= 0)
          cellv[{r.depth, r.length}].add(r.score);
      if (cellv.empty()) continue;
      std::vector<std::vector<double>> v(depths.size(), std::vector<double>(lengths.size(), NAN));
      std::vector<std::string> rl, cl;
      for (double d : depths) rl.push_back(fmt::format("{:g}%", d));
      for (int64_t l : lengths) cl.push_back(std::to_string(l));
      for (size_t a = 0; a < depths.size(); ++a)
        for (size_t b = 0; b < lengths.size(); ++b)
          if (cellv.count({depths[a], lengths[b]})) v[a][b] = cellv[{depths[a], lengths[b]}].get();
      const std::string budget = g.substr(g.rfind('|') + 1);
      const std::string name = shown(g) + (group_info[g].second ? "" : ", budget " + budget);
      write(fmt::format("heatmap_{}_{:02}_{}_{}.svg", file_safe(t),
                        std::find(groups.begin(), groups.end(), g) - groups.begin(),
                        file_safe(group_info[g].first), file_safe(budget)),
            heat_map_svg(t + ": " + name, rl, cl, v, "needle depth", "prompt length (tokens)"));
    }
  }
  return rep;
}

}  // namespace kvsieve::eval
