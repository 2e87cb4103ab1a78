// Every eviction method against a naive reference written here: full n x n
// attention matrices from plain loops over the recorded queries and keys,
// then each paper's rule applied literally. Keep sets must be identical
// (a swap is tolerated only for a tie under the reference's own scores).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "core/error.h"
#include "kv/budget.h"
#include "kv_test_util.h"
#include "test_util.h"
#include <fmt/format.h>

namespace kvsieve::testing {
namespace {

using Scores = std::vector<std::vector<double>>;  // [L * S][n]

KeepSets run_method(const Model& m, const std::vector<int32_t>& ids, const EvictionConfig& cfg,
                    EvictionReport* rep = nullptr) {
  CpuBackend be(2);
  Context s(m, be);
  Evictor ev(cfg, attn_geometry(m));
  s.record(ev.record_spec());
  s.prefill(ids, 64);
  EvictionReport r = ev.compress(s.store(), s.recorder());
  if (rep) *rep = r;
  return r.kept;
}

// Torch-style 1-D pooling over v[0, m): stride 1, padding k/2; max ignores
// the padding, avg counts it as zeros.
std::vector<double> pool_ref(const std::vector<double>& v, int64_t m, int64_t k, bool max) {
  std::vector<double> o(v);
  for (int64_t i = 0; i < m; ++i) {
    double acc = max ? -INFINITY : 0.0;
    for (int64_t j = i - k / 2; j <= i + k / 2; ++j) {
      if (j < 0 || j >= m) continue;
      acc = max ? std::max(acc, v[size_t(j)]) : acc + v[size_t(j)];
    }
    o[size_t(i)] = max ? acc : acc / double(k);
  }
  return o;
}

// Per query head scores -> per stored head: mean over each group (S < H),
// pooling the prefix [0, n - window) before (kvpress) or after the mean.
Scores group_and_pool(const Recorded& r, const std::vector<std::vector<double>>& per_qhead,
                      int64_t S, int64_t window, int64_t kernel, const char* pool,
                      bool gqa_first) {
  const int64_t H = r.H, group = H / S, m = r.n - window;
  auto pool1 = [&](const std::vector<double>& v) {
    if (std::string(pool) == "none") return v;
    return pool_ref(v, m, kernel, std::string(pool) == "max");
  };
  Scores out(static_cast<size_t>(S));
  for (int64_t s = 0; s < S; ++s) {
    std::vector<double> acc(size_t(r.n), 0.0);
    for (int64_t h = s * group; h < (s + 1) * group; ++h) {
      const auto v = gqa_first ? per_qhead[size_t(h)] : pool1(per_qhead[size_t(h)]);
      for (int64_t j = 0; j < r.n; ++j) acc[size_t(j)] += v[size_t(j)] / double(group);
    }
    out[size_t(s)] = gqa_first ? pool1(acc) : acc;
  }
  return out;
}

// Reference scores of every layer: fn(layer) gives per-query-head scores.
Scores layer_scores(const Recorded& r, int64_t S, int64_t window, int64_t kernel,
                    const char* pool, bool gqa_first,
                    const std::function<std::vector<std::vector<double>>(int64_t)>& fn) {
  Scores all;
  for (int64_t l = 0; l < r.L; ++l) {
    Scores per_layer = group_and_pool(r, fn(l), S, window, kernel, pool, gqa_first);
    for (auto& v : per_layer) all.push_back(std::move(v));
  }
  return all;
}

std::vector<std::vector<double>> window_attention(const Recorded& r, int64_t l, int64_t w) {
  std::vector<std::vector<double>> s(size_t(r.H), std::vector<double>(size_t(r.n), 0.0));
  for (int64_t h = 0; h < r.H; ++h)
    for (int64_t i = r.n - w; i < r.n; ++i)
      for (int64_t j = 0; j <= i; ++j) s[size_t(h)][size_t(j)] += r.a(l, h, i, j) / double(w);
  return s;
}

std::vector<std::vector<double>> all_queries(const Recorded& r, int64_t l, bool normalize) {
  std::vector<std::vector<double>> s(size_t(r.H), std::vector<double>(size_t(r.n), 0.0));
  for (int64_t h = 0; h < r.H; ++h)
    for (int64_t i = 0; i < r.n; ++i)
      for (int64_t j = 0; j <= i; ++j) s[size_t(h)][size_t(j)] += r.a(l, h, i, j);
  if (normalize)
    for (auto& v : s)
      for (int64_t j = 0; j < r.n; ++j) v[size_t(j)] /= double(r.n - j);
  return s;
}

KeepSets keep_from(const Scores& sc, int64_t L, int64_t S, const std::vector<int64_t>& budget,
                   int64_t sinks, int64_t window) {
  std::vector<std::vector<int32_t>> lists;
  for (int64_t i = 0; i < L * S; ++i)
    lists.push_back(naive_keep(sc[size_t(i)], budget[size_t(i)], sinks, window));
  return KeepSets::from_lists(L, S, lists);
}

EvictionConfig cfg(const std::string& spec, int64_t tokens, const std::string& preset = "",
                   Granularity g = Granularity::kKvHead, double ratio = 0) {
  EvictionConfig c;
  c.spec = spec;
  c.preset = preset;
  c.budget.tokens = tokens;
  c.budget.ratio = ratio;
  c.granularity = g;
  return c;
}

class KvMethods : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "stories260K") KVSIEVE_REQUIRE_SHARED("stories260K/stories260K.bin");
    model_ = &kv_test_model(GetParam());
    ids_ = kv_test_ids(GetParam(), 200);
    rec_ = record_prefill(*model_, ids_);
  }
  std::vector<int64_t> uniform(int64_t S, int64_t b) const {
    return std::vector<int64_t>(size_t(rec_.L * S), b);
  }
  void check(const std::string& what, const KeepSets& ref, const KeepSets& got, const Scores& sc) {
    const int64_t swaps = expect_same_keep(ref, got, &sc, 1e-5, GetParam() + " " + what);
    EXPECT_LE(swaps * 100, ref.total()) << what << ": too many tie swaps (" << swaps << ")";
  }
  const Model* model_ = nullptr;
  std::vector<int32_t> ids_;
  Recorded rec_;
};

TEST_P(KvMethods, SnapKV) {
  for (int64_t B : {32, 64, 128}) {
    for (const char* pool : {"max", "avg"}) {
      const int64_t w = 16, k = pool[0] == 'm' ? 7 : 5;
      const std::string spec =
          fmt::format("snapkv:window={},kernel={},pool={}", w, k, pool);
      const Scores sc = layer_scores(rec_, rec_.KV, w, k, pool, false,
                                     [&](int64_t l) { return window_attention(rec_, l, w); });
      check(spec, keep_from(sc, rec_.L, rec_.KV, uniform(rec_.KV, B), 0, w),
            run_method(*model_, ids_, cfg(spec, B)), sc);
    }
  }
}

TEST_P(KvMethods, SnapKVGroupReducedBeforePooling) {
  const std::string spec = "snapkv:window=8,kernel=7,pool=max,gqa_first=1";
  const Scores sc = layer_scores(rec_, rec_.KV, 8, 7, "max", true,
                                 [&](int64_t l) { return window_attention(rec_, l, 8); });
  check(spec, keep_from(sc, rec_.L, rec_.KV, uniform(rec_.KV, 48), 0, 8),
        run_method(*model_, ids_, cfg(spec, 48)), sc);
}

TEST_P(KvMethods, SnapKVPerQueryHead) {
  // KVCache-Factory / LAQ code: K/V repeated per query head, one set each.
  const std::string spec = "snapkv:window=8,kernel=7,pool=max";
  const Scores sc = layer_scores(rec_, rec_.H, 8, 7, "max", false,
                                 [&](int64_t l) { return window_attention(rec_, l, 8); });
  EvictionReport rep;
  const KeepSets got =
      run_method(*model_, ids_, cfg(spec, 40, "", Granularity::kQueryHead), &rep);
  EXPECT_EQ(got.n_heads, rec_.H);
  check(spec, keep_from(sc, rec_.L, rec_.H, uniform(rec_.H, 40), 0, 8), got, sc);
}

TEST_P(KvMethods, KvpressPresetWithRatio) {
  // kvpress: window 64, avg-pool 5, mean over the group after pooling,
  // int(n (1 - r)) kept per KV head.
  // 0.75 of 200 tokens leaves 50, fewer than the protected window of 64:
  // kvpress would keep an arbitrary part of its window; kvsieve refuses.
  EXPECT_THROW(run_method(*model_, ids_, cfg("snapkv", 0, "kvpress", Granularity::kKvHead, 0.75)),
               Error);
  for (double ratio : {0.25, 0.5, 0.6}) {
    const int64_t keep = int64_t(double(rec_.n) * (1.0 - ratio));
    const Scores sc = layer_scores(rec_, rec_.KV, 64, 5, "avg", false,
                                   [&](int64_t l) { return window_attention(rec_, l, 64); });
    check("kvpress snapkv", keep_from(sc, rec_.L, rec_.KV, uniform(rec_.KV, keep), 0, 64),
          run_method(*model_, ids_, cfg("snapkv", 0, "kvpress", Granularity::kKvHead, ratio)), sc);
  }
}

TEST_P(KvMethods, H2O) {
  for (int normalize : {0, 1}) {
    const std::string spec = fmt::format("h2o:window=16,normalize={}", normalize);
    const Scores sc = layer_scores(rec_, rec_.KV, 16, 1, "none", false,
                                   [&](int64_t l) { return all_queries(rec_, l, normalize); });
    for (int64_t B : {32, 64, 128})
      check(spec, keep_from(sc, rec_.L, rec_.KV, uniform(rec_.KV, B), 0, 16),
            run_method(*model_, ids_, cfg(spec, B)), sc);
  }
}

TEST_P(KvMethods, Tova) {
  Scores sc;
  for (int64_t l = 0; l < rec_.L; ++l) {
    std::vector<double> s(size_t(rec_.n), 0.0);
    for (int64_t h = 0; h < rec_.H; ++h)
      for (int64_t j = 0; j < rec_.n; ++j)
        s[size_t(j)] += rec_.a(l, h, rec_.n - 1, j) / double(rec_.H);
    for (int64_t g = 0; g < rec_.KV; ++g) sc.push_back(s);
  }
  for (int64_t B : {32, 64})
    check("tova", keep_from(sc, rec_.L, rec_.KV, uniform(rec_.KV, B), 0, 1),
          run_method(*model_, ids_, cfg("tova", B)), sc);
}

TEST_P(KvMethods, KeyNorm) {
  Scores sc;
  for (int64_t l = 0; l < rec_.L; ++l)
    for (int64_t g = 0; g < rec_.KV; ++g) {
      std::vector<double> s(static_cast<size_t>(rec_.n));
      for (int64_t j = 0; j < rec_.n; ++j) {
        double ss = 0;
        for (int64_t t = 0; t < rec_.hd; ++t) ss += double(rec_.key(l, g, j)[t]) * rec_.key(l, g, j)[t];
        s[size_t(j)] = -std::sqrt(ss);
      }
      sc.push_back(s);
    }
  check("knorm", keep_from(sc, rec_.L, rec_.KV, uniform(rec_.KV, 50), 0, 0),
        run_method(*model_, ids_, cfg("knorm", 50)), sc);
}

TEST_P(KvMethods, StreamingLLM) {
  const KeepSets got = run_method(*model_, ids_, cfg("streamingllm", 40));
  for (const auto& k : keep_lists(got)) {
    std::vector<int32_t> want = {0, 1, 2, 3};
    for (int32_t p = int32_t(rec_.n) - 36; p < int32_t(rec_.n); ++p) want.push_back(p);
    EXPECT_EQ(k, want);
  }
}

TEST_P(KvMethods, RandomIsSeededAndHoldsTheBudget) {
  const KeepSets a = run_method(*model_, ids_, cfg("random:seed=7", 30));
  const KeepSets b = run_method(*model_, ids_, cfg("random:seed=7", 30));
  const KeepSets c = run_method(*model_, ids_, cfg("random:seed=8", 30));
  EXPECT_EQ(keep_lists(a), keep_lists(b));
  EXPECT_NE(keep_lists(a), keep_lists(c));
  for (const auto& k : keep_lists(a)) EXPECT_EQ(k.size(), 30u);
}

TEST_P(KvMethods, PyramidKVUsesTheLayerSchedule) {
  const int64_t C = 48, w = 8;
  const std::vector<int64_t> per_layer =
      layer_keep(Budget{C, 0}, Allocation::kPyramid, rec_.n, rec_.L, w, 20);
  std::vector<int64_t> budget;
  for (int64_t l = 0; l < rec_.L; ++l)
    for (int64_t g = 0; g < rec_.KV; ++g) budget.push_back(per_layer[size_t(l)]);
  const Scores sc = layer_scores(rec_, rec_.KV, w, 7, "max", false,
                                 [&](int64_t l) { return window_attention(rec_, l, w); });
  EvictionReport rep;
  const KeepSets got = run_method(*model_, ids_, cfg("pyramidkv:window=8", C), &rep);
  EXPECT_EQ(rep.budget, budget);
  check("pyramidkv", keep_from(sc, rec_.L, rec_.KV, budget, 0, w), got, sc);
}

TEST_P(KvMethods, AdaKVKvpressVariant) {
  // Per layer: every head keeps its window and its best int(B * 0.2) rows;
  // the layer's remaining B * heads slots go to the best other rows of any head.
  const int64_t B = 48, w = 8, safe = int64_t(B * 0.2);
  const Scores sc = layer_scores(rec_, rec_.KV, w, 7, "max", false,
                                 [&](int64_t l) { return window_attention(rec_, l, w); });
  std::vector<int64_t> budget;
  for (int64_t l = 0; l < rec_.L; ++l) {
    struct C { double s; int64_t g, j; };
    std::vector<C> rest;
    std::vector<int64_t> count(size_t(rec_.KV), w);
    for (int64_t g = 0; g < rec_.KV; ++g) {
      const auto& s = sc[size_t(l * rec_.KV + g)];
      std::vector<int64_t> order;
      for (int64_t j = 0; j < rec_.n - w; ++j) order.push_back(j);
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t b) { return s[size_t(a)] > s[size_t(b)]; });
      const int64_t forced = std::max<int64_t>(0, safe - w);
      count[size_t(g)] += forced;
      for (size_t i = size_t(forced); i < order.size(); ++i)
        rest.push_back({s[size_t(order[i])], g, order[i]});
    }
    int64_t free = B * rec_.KV;
    for (int64_t c : count) free -= c;
    std::stable_sort(rest.begin(), rest.end(), [](const C& a, const C& b) { return a.s > b.s; });
    for (int64_t i = 0; i < free; ++i) ++count[size_t(rest[size_t(i)].g)];
    for (int64_t c : count) budget.push_back(c);
  }
  EvictionReport rep;
  const KeepSets got = run_method(*model_, ids_, cfg("adakv:window=8", B), &rep);
  // Per-head budgets may differ by a tie at the layer's cut; their sum may not.
  for (int64_t l = 0; l < rec_.L; ++l) {
    int64_t sum = 0;
    for (int64_t g = 0; g < rec_.KV; ++g) sum += rep.budget[size_t(l * rec_.KV + g)];
    EXPECT_EQ(sum, B * rec_.KV) << "layer " << l;
  }
  check("adakv", keep_from(sc, rec_.L, rec_.KV, budget, 0, w), got, sc);
}

INSTANTIATE_TEST_SUITE_P(Models, KvMethods, ::testing::ValuesIn(kv_test_models()),
                         model_param_name);

}  // namespace
}  // namespace kvsieve::testing
