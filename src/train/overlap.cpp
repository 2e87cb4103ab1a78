#include "train/overlap.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>

#include "core/error.h"
#include "engine/compressor.h"
#include "engine/context.h"
#include "core/select.h"
#include "train/prompt_file.h"
#include "train/targets.h"

namespace kvsieve {

std::vector<OverlapRow> keep_set_overlap(const Model& m, Backend& be, const std::string& data,
                                         const OverlapConfig& cfg) {
  const Tokenizer* tok = m.tokenizer();
  check(tok != nullptr, "the model has no tokenizer");
  check(!cfg.methods.empty() && !cfg.budgets.empty(), "give methods and budgets");
  for (int64_t B : cfg.budgets) check(B > 0, "budgets must be positive (got {})", B);
  const auto& methods = cfg.methods;
  const auto& budgets = cfg.budgets;
  const ModelConfig& c = m.config();
  const int64_t L = c.n_layer, KV = c.n_head_kv, group = c.n_head / c.n_head_kv;
  const std::vector<PromptLine> prompts = read_prompt_lines(data, *tok, "held-out prompts");
  // (method, budget) -> overlap per prompt; every method runs on the same
  // prompts at a budget, so the vectors of one budget line up for pairing.
  std::map<std::pair<size_t, int64_t>, std::vector<double>> acc, acc_mass;
  for (size_t pi = 0; pi < prompts.size(); ++pi) {
    const auto& prompt = prompts[pi].ids;
    // The prefix that is prefilled, then cut: the context (query-agnostic) or all.
    const int64_t n = cfg.query_agnostic ? prompts[pi].n_context : int64_t(prompt.size());
    const JudgeTarget t = compute_target(m, be, prompt, n, cfg.max_response);
    if (t.response.empty()) continue;
    // Ideal scores per (layer, KV head): the group's mean target attention.
    std::vector<std::vector<float>> ideal(size_t(L * KV), std::vector<float>(size_t(n), 0.0f));
    for (int64_t l = 0; l < L; ++l)
      for (int64_t h = 0; h < c.n_head; ++h)
        for (int64_t j = 0; j < n; ++j)
          ideal[size_t(l * KV + h / group)][size_t(j)] += float(t.maps.at(l, h, j) / double(group));
    std::vector<std::unique_ptr<Compressor>> comps;
    RecordSpec record;
    for (const auto& spec : methods) {
      EvictionConfig cfg;
      cfg.spec = spec;
      cfg.budget.tokens = budgets.front();
      comps.push_back(std::make_unique<Compressor>(cfg, m));
      record |= comps.back()->record_spec();
    }
    Context base(m, be);
    base.record(record);
    const std::vector<int32_t> cut_prefix(prompt.begin(), prompt.begin() + n);
    const std::vector<float> logits = base.prefill(cut_prefix, 256);
    base.pause_recording(true);
    const int32_t first = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    for (int64_t B : budgets) {
      if (B >= n) continue;
      for (size_t mi = 0; mi < methods.size(); ++mi) {
        const Budget budget{B, 0};
        const EvictionReport r = comps[mi]->plan(base, first, budget).report;
        check(r.kept.n_heads == KV, "overlap needs KV-head granularity");
        double sum = 0, mass = 0;
        for (int64_t l = 0; l < L; ++l)
          for (int64_t g = 0; g < KV; ++g) {
            const auto& sc = ideal[size_t(l * KV + g)];
            std::vector<int64_t> best = top_k(sc.data(), n, B);
            std::sort(best.begin(), best.end());
            const auto& kept = r.kept.at(l, g);
            int64_t common = 0;
            double ideal_mass = 0, kept_mass = 0;
            for (int64_t b : best) {
              common += std::binary_search(kept.begin(), kept.end(), int32_t(b));
              ideal_mass += sc[size_t(b)];
            }
            for (int32_t k : kept)
              if (k < n) kept_mass += sc[size_t(k)];
            sum += double(common) / double(B);
            mass += ideal_mass > 0 ? kept_mass / ideal_mass : 1.0;
          }
        acc[{mi, B}].push_back(sum / double(L * KV));
        acc_mass[{mi, B}].push_back(mass / double(L * KV));
      }
    }
    if (cfg.progress) std::fprintf(stderr, "\rkvsieve: overlap %zu/%zu prompts", pi + 1, prompts.size());
  }
  if (cfg.progress) std::fprintf(stderr, "\n");
  // Mean and standard error of the mean of x.
  const auto mean_se = [](const std::vector<double>& x) {
    double mean = 0, ss = 0;
    for (double v : x) mean += v;
    mean /= double(x.size());
    for (double v : x) ss += (v - mean) * (v - mean);
    const double se = x.size() > 1 ? std::sqrt(ss / double(x.size() - 1) / double(x.size())) : 0.0;
    return std::pair<double, double>{mean, se};
  };
  std::vector<OverlapRow> rows;
  for (size_t mi = 0; mi < methods.size(); ++mi)
    for (int64_t B : budgets) {
      auto it = acc.find({mi, B});
      if (it == acc.end()) continue;
      // Mean, its error, and the paired difference from the first method.
      const auto stats = [&](const auto& per_prompt) {
        const std::vector<double>& x = per_prompt.at({mi, B});
        const std::vector<double>& first = per_prompt.at({0, B});
        std::vector<double> diff(x.size());
        for (size_t i = 0; i < x.size(); ++i) diff[i] = x[i] - first[i];
        const auto [mean, se] = mean_se(x);
        const auto [dmean, dse] = mean_se(diff);
        return std::array<double, 4>{mean, se, dmean, dse};
      };
      const auto o = stats(acc), w = stats(acc_mass);
      rows.push_back({methods[mi], B, o[0], o[1], o[2], o[3], w[0], w[1], w[2], w[3], int64_t(it->second.size())});
    }
  return rows;
}

}  // namespace kvsieve
