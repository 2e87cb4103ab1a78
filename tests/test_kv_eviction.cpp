// What eviction must guarantee whatever the method: no-op budgets change
// nothing (bit for bit), budgets/sinks/windows hold exactly, positions and
// rows are untouched, memory really shrinks, decoding after a cut equals a
// fresh session cut to the same keep sets, and bad specs fail clearly.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "kv/budget.h"
#include "kv/kept_dump.h"
#include "kv_test_util.h"
#include "test_util.h"

namespace kvsieve::testing {
namespace {

const std::vector<std::string> kAllSpecs = {
    "snapkv", "h2o", "tova", "knorm", "random", "streamingllm", "pyramidkv", "adakv",
    "adakv:variant=kvcache-factory", "snapkv:window=8,pool=avg,kernel=5", "h2o:normalize=1"};

// Prefills, cuts, then decodes `steps` greedy tokens; returns every step's logits.
struct GenRun {
  std::vector<std::vector<float>> logits;  // [steps + 1][vocab]: prompt's last, then each step
  EvictionReport report;
  std::vector<int32_t> tokens;
};
GenRun generate_with(const Model& m, const std::vector<int32_t>& ids, Evictor* ev, int steps,
                  const KeepSets* restore = nullptr) {
  CpuBackend be(2);
  Context s(m, be);
  if (ev) s.record(ev->record_spec());
  GenRun r;
  r.logits.push_back(s.prefill(ids, 64));
  if (ev) r.report = ev->compress(s.store(), s.recorder());
  if (restore) s.store().retain(*restore);
  for (int i = 0; i < steps; ++i) {
    const auto& last = r.logits.back();
    const int32_t next = argmax(last);
    r.tokens.push_back(next);
    r.logits.push_back(s.decode(next));
    if (ev) ev->after_decode(s.store(), s.recorder());
  }
  return r;
}

bool bit_identical(const std::vector<std::vector<float>>& a,
                   const std::vector<std::vector<float>>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].size() != b[i].size() ||
        std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(float)) != 0)
      return false;
  return true;
}

using KvEviction = KvModelTest<160>;

TEST_P(KvEviction, FullAndBudgetsAbovePromptAreBitIdentical) {
  const GenRun base = generate_with(*model_, ids_, nullptr, 6);
  for (const auto& g : {Granularity::kKvHead, Granularity::kQueryHead}) {
    Evictor full(budget_cfg("full", 0, g), attn_geometry(*model_));
    EXPECT_TRUE(bit_identical(base.logits, generate_with(*model_, ids_, &full, 6).logits));
    for (const auto& spec : kAllSpecs) {
      for (int64_t b : {int64_t(ids_.size()), int64_t(ids_.size()) + 50}) {
        Evictor ev(budget_cfg(spec, b, g), attn_geometry(*model_));
        const GenRun r = generate_with(*model_, ids_, &ev, 6);
        EXPECT_TRUE(bit_identical(base.logits, r.logits))
            << spec << " budget " << b << " " << granularity_name(g);
      }
    }
  }
}

TEST_P(KvEviction, BudgetsSinksWindowsAndBytesHoldExactly) {
  const AttnGeometry geo = attn_geometry(*model_);
  const int64_t n = int64_t(ids_.size());
  for (const auto& g : {Granularity::kKvHead, Granularity::kQueryHead}) {
    const int64_t S = g == Granularity::kKvHead ? geo.n_head_kv : geo.n_head;
    for (const auto& spec : kAllSpecs) {
      for (int64_t B : {40, 64, 100}) {
        CpuBackend be(2);
        Context s(*model_, be);
        Evictor ev(budget_cfg(spec, B, g), geo);
        s.record(ev.record_spec());
        s.prefill(ids_, 64);
        // Rows before the cut, to check kept rows are untouched.
        std::vector<std::vector<float>> k0;
        for (int64_t l = 0; l < geo.n_layer; ++l)
          for (int64_t kv = 0; kv < geo.n_head_kv; ++kv) {
            k0.push_back(head_rows(s.store(), l, kv).k);
          }
        const EvictionReport r = ev.compress(s.store(), s.recorder());
        const std::string what = spec + " B=" + std::to_string(B) + " " + granularity_name(g);
        ASSERT_EQ(r.kept.n_heads, S) << what;
        int64_t total_budget = 0;
        const Protect p = ev.policy().protect;
        for (int64_t l = 0; l < geo.n_layer; ++l) {
          int64_t layer_sum = 0;
          for (int64_t h = 0; h < S; ++h) {
            const auto keep = r.kept.at(l, h);
            const int64_t budget = r.budget[size_t(l * S + h)];
            layer_sum += budget;
            EXPECT_EQ(int64_t(keep.size()), budget) << what;
            EXPECT_EQ(s.store().rows(l, h), budget) << what;
            for (int32_t q = 0; q < p.sinks; ++q)
              EXPECT_TRUE(std::binary_search(keep.begin(), keep.end(), q)) << what << " sink";
            for (int32_t q = int32_t(n - p.window); q < n; ++q)
              EXPECT_TRUE(std::binary_search(keep.begin(), keep.end(), q)) << what << " window";
            // Positions and rows unchanged.
            const HeadRows v = head_rows(s.store(), l, h);
            const auto& orig = k0[size_t(l * geo.n_head_kv + h / (S / geo.n_head_kv))];
            for (int64_t j = 0; j < v.n; ++j) {
              EXPECT_EQ(v.pos[j], keep[size_t(j)]);
              EXPECT_EQ(0, std::memcmp(v.k.data() + j * geo.head_dim,
                                       orig.data() + int64_t(v.pos[j]) * geo.head_dim,
                                       size_t(geo.head_dim) * sizeof(float)))
                  << what;
            }
          }
          if (ev.policy().alloc == Allocation::kUniform) {
            EXPECT_EQ(layer_sum, B * S) << what;
          }
          if (ev.policy().alloc == Allocation::kAdaKV && ev.policy().ada_variant == "kvpress") {
            EXPECT_EQ(layer_sum, B * S) << what;
          }
          total_budget += layer_sum;
        }
        EXPECT_EQ(s.store().kv_bytes(), size_t(total_budget * geo.head_dim * 2) * sizeof(float))
            << what;
        EXPECT_EQ(r.kv_bytes_after, s.store().kv_bytes());
        EXPECT_EQ(r.kv_bytes_before, size_t(n * geo.n_layer * geo.n_head_kv * geo.head_dim * 2) *
                                         sizeof(float));
      }
    }
  }
}

TEST_P(KvEviction, DecodingAfterACutEqualsAFreshSessionRestored) {
  for (const auto& g : {Granularity::kKvHead, Granularity::kQueryHead}) {
    for (const auto& spec : kAllSpecs) {
      Evictor ev(budget_cfg(spec, 48, g), attn_geometry(*model_));
      const GenRun a = generate_with(*model_, ids_, &ev, 8);
      // A fresh session: same prompt, no evictor, cut to the dumped keep sets.
      const KeepSets restored = kept_from_json(kept_to_json(ev, a.report));
      CpuBackend be(2);
      Context s(*model_, be);
      s.prefill(ids_, 64);
      if (g == Granularity::kQueryHead)
        s.store().replicate(model_->config().n_head / model_->config().n_head_kv);
      s.store().retain(restored);
      std::vector<std::vector<float>> logits = {a.logits[0]};
      for (int32_t t : a.tokens) logits.push_back(s.decode(t));
      EXPECT_TRUE(bit_identical(a.logits, logits)) << spec << " " << granularity_name(g);
    }
  }
}

TEST_P(KvEviction, DecodeTimeBudgetKeepsTheCacheBounded) {
  for (const std::string spec : {"snapkv:window=8", "h2o:window=8", "streamingllm", "knorm:window=4"}) {
    EvictionConfig c = budget_cfg(spec, 40);
    c.decode_every = 5;
    Evictor ev(c, attn_geometry(*model_));
    CpuBackend be(2);
    Context s(*model_, be);
    s.record(ev.record_spec());
    const auto& first = s.prefill(ids_, 64);
    ev.compress(s.store(), s.recorder());
    int32_t next = argmax(first);
    int cuts = 0;
    for (int i = 0; i < 23; ++i) {
      const auto& lg = s.decode(next);
      next = argmax(lg);
      cuts += ev.after_decode(s.store(), s.recorder());
      EXPECT_LE(s.store().max_rows(), 40 + 4) << spec;
      // The newest token is always there (recent window or recency).
      const HeadRows v = head_rows(s.store(), 0, 0);
      EXPECT_EQ(v.pos[v.n - 1], s.n_past() - 1) << spec;
    }
    EXPECT_EQ(cuts, 4) << spec;
    EXPECT_EQ(s.store().max_rows(), 40 + 3) << spec;  // 3 tokens since the 4th cut
  }
}

INSTANTIATE_TEST_SUITE_P(Models, KvEviction, ::testing::Values("llama3-f32", "qwen2-f32"),
                         model_param_name);

TEST(KvCacheRetain, BadKeepSetsLeaveTheCacheUnchanged) {
  CpuBackend be(1);
  KvStore c(be, {2, 2, 4, 1});
  std::vector<float> k(5 * 2 * 4), v(5 * 2 * 4);
  for (size_t i = 0; i < k.size(); ++i) k[i] = float(i), v[i] = -float(i);
  const std::vector<int32_t> pos = {0, 1, 2, 5, 9};
  for (int l = 0; l < 2; ++l) c.append(l, k.data(), v.data(), pos.data(), 5);
  const KeepSets before = c.positions();
  const size_t bytes = c.kv_bytes();
  KeepSets bad = with_head(before, 1, 1, {0, 3});  // position 3 is not held
  EXPECT_THROW(c.retain(bad), Error);
  bad = with_head(before, 1, 0, {5, 2});  // not increasing
  EXPECT_THROW(c.retain(bad), Error);
  auto lists = keep_lists(before);
  lists.pop_back();
  bad = KeepSets::from_lists(2, 2, lists);
  EXPECT_THROW(c.retain(bad), Error);
  EXPECT_EQ(keep_lists(c.positions()), keep_lists(before));
  EXPECT_EQ(c.kv_bytes(), bytes);
  KeepSets ok = with_head(before, 0, 1, {1, 9});
  c.retain(ok);
  const HeadRows h = head_rows(c, 0, 1);
  ASSERT_EQ(h.n, 2);
  EXPECT_EQ(h.pos[1], 9);
  EXPECT_EQ(h.k[4], k[4 * 8 + 4]);  // row 4 of the input, head 1's half
  EXPECT_EQ(c.kv_bytes(), bytes - 3 * 4 * 2 * sizeof(float));
}

// Attention reads the rows a query may see as a prefix, so every appended
// batch must be sorted and after what the layer holds: anything else is
// refused before the store changes.
TEST(KvStoreAppend, RejectsUnsortedOrRepeatedPositions) {
  CpuBackend be(1);
  KvStore c(be, {1, 2, 4, 1});
  std::vector<float> k(3 * 2 * 4, 1.0f), v(3 * 2 * 4, 2.0f);
  const std::vector<int32_t> first = {0, 1, 5};
  c.append(0, k.data(), v.data(), first.data(), 3);
  const KeepSets before = c.positions();
  for (const std::vector<int32_t>& bad : std::vector<std::vector<int32_t>>{
           {6, 9, 8},    // not increasing inside the batch
           {7, 7, 8},    // repeated inside the batch
           {5, 6, 7},    // 5 is held already
           {2, 6, 7}}) {  // before the last held position
    EXPECT_THROW(c.append(0, k.data(), v.data(), bad.data(), 3), Error)
        << ::testing::PrintToString(bad);
    EXPECT_EQ(keep_lists(c.positions()), keep_lists(before));
  }
  const std::vector<int32_t> next = {6, 9, 12};
  c.append(0, k.data(), v.data(), next.data(), 3);
  EXPECT_EQ(keep_lists(c.positions())[1], (std::vector<int32_t>{0, 1, 5, 6, 9, 12}));
}

TEST(KvBudgets, PyramidSchedulesOfBothLibraries) {
  // kvpress PyramidKVPress (window 64, beta 20, 32 layers).
  auto kvpress = layer_keep(Budget{0, 0.5}, Allocation::kPyramid, 1000, 32, 64, 20);
  EXPECT_EQ(kvpress[0], 936);
  EXPECT_EQ(kvpress[1], 908);
  EXPECT_EQ(kvpress[15], 514);
  EXPECT_EQ(kvpress[31], 64);
  auto fallback = layer_keep(Budget{0, 0.75}, Allocation::kPyramid, 1000, 32, 64, 20);
  for (int64_t b : fallback) EXPECT_EQ(b, 250);
  // KVCache-Factory PyramidKVCluster: C = 128, window 8: 234 - 7 l selected + 8.
  auto kvf = layer_keep(Budget{128, 0}, Allocation::kPyramid, 5000, 32, 8, 20);
  for (int l = 0; l < 32; ++l) EXPECT_EQ(kvf[size_t(l)], 234 - 7 * l + 8) << l;
  auto small = layer_keep(Budget{128, 0}, Allocation::kPyramid, 200, 32, 8, 20);
  for (int64_t b : small) EXPECT_EQ(b, 128);  // n < 2 (C - w): uniform
  // kvpress's int(n (1 - r)) truncates float artefacts as Python does.
  EXPECT_EQ(uniform_keep(Budget{0, 0.8}, 1000), 199);
  EXPECT_EQ(uniform_keep(Budget{0, 0.9}, 1000), 99);
  EXPECT_EQ(uniform_keep(Budget{0, 0.1}, 1024), 921);
}

// kvpress's Ada-KV split ranks the leftover candidates of all heads as top_k
// ranks one head's: NaN below every number, equal scores to the lower head,
// then the earlier row (the GPU's split is checked against this).
TEST(KvBudgets, AdaKvSplitRanksNanLastAndTiesToTheLowerHead) {
  const int64_t rows[2] = {10, 10};
  std::vector<float> nan_head(20, std::nanf(""));
  for (int j = 10; j < 20; ++j) nan_head[size_t(j)] = float(j % 3) - 5.0f;
  EXPECT_EQ(adakv_split(nan_head.data(), 10, rows, 2, 4, Protect{}, 0.0, "kvpress"),
            (std::vector<int64_t>{0, 8}));
  std::vector<float> nan_second(20, 1.0f);
  for (int j = 10; j < 20; ++j) nan_second[size_t(j)] = std::nanf("");
  EXPECT_EQ(adakv_split(nan_second.data(), 10, rows, 2, 4, Protect{}, 0.0, "kvpress"),
            (std::vector<int64_t>{8, 0}));
  const std::vector<float> ties(20, 0.5f);
  EXPECT_EQ(adakv_split(ties.data(), 10, rows, 2, 4, Protect{}, 0.0, "kvpress"),
            (std::vector<int64_t>{8, 0}));
  // floor 0.5: each head first takes its best 2; the 4 left go to head 0.
  EXPECT_EQ(adakv_split(ties.data(), 10, rows, 2, 4, Protect{}, 0.5, "kvpress"),
            (std::vector<int64_t>{6, 2}));
}

TEST(KvSpecs, BadSpecsGiveClearErrors) {
  const AttnGeometry geo{2, 4, 2, 8};
  auto err = [&](const std::string& spec, int64_t tokens, double ratio = 0) {
    EvictionConfig c;
    c.spec = spec;
    c.budget.tokens = tokens;
    c.budget.ratio = ratio;
    try {
      Evictor ev(c, geo);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(err("snapkvv", 64).find("unknown KV method 'snapkvv'"), std::string::npos);
  EXPECT_NE(err("snapkv:windw=8", 64).find("unknown parameter 'windw'"), std::string::npos);
  EXPECT_NE(err("snapkv:window", 64).find("not key=value"), std::string::npos);
  EXPECT_NE(err("snapkv:window=x", 64).find("not an integer"), std::string::npos);
  EXPECT_NE(err("snapkv:kernel=4", 64).find("odd"), std::string::npos);
  EXPECT_NE(err("snapkv:pool=min", 64).find("not one of"), std::string::npos);
  EXPECT_NE(err("snapkv", 0).find("ratio"), std::string::npos);  // neither budget nor ratio
  EXPECT_NE(err("snapkv", 0, 1.0).find("(0, 1)"), std::string::npos);
  EXPECT_NE(err("snapkv", 0, -0.5).find("(0, 1)"), std::string::npos);
  EXPECT_NE(err("snapkv:window=64", 32).find("exceed the budget"), std::string::npos);
  EXPECT_NE(err("adakv:base=adakv", 32).find("not one of"), std::string::npos);
  EXPECT_NE(err("pyramidkv:base=h2o,normalize=2", 64).find("normalize"), std::string::npos);
  EXPECT_EQ(err("pyramidkv:base=h2o,normalize=1,window=8", 64), "no error");
  EXPECT_EQ(err("full", 0), "no error");
}

TEST(KvCli, DumpKeptAndBadOptions) {
  testing::TempDir d;
  const std::string model = fixtures() + "/hf/llama3-f32", ids = fixtures() + "/hf/llama3-f32/ids.npy";
  const std::string out = d.file("kept.json");
  auto r = run_kvsieve("run -m " + model + " --ids " + ids +
                       " -n 4 --kv snapkv:window=8 --kv-budget 24 --dump-kept " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const KeepSets ks = kept_from_json(read_file(out));
  EXPECT_EQ(ks.n_layer, 3);
  EXPECT_EQ(ks.n_heads, 2);
  for (const auto& k : keep_lists(ks)) EXPECT_EQ(k.size(), 24u);
  EXPECT_NE(r.err.find("after"), std::string::npos) << r.err;  // bytes before/after reported
  for (const std::string bad :
       {"--kv nope --kv-budget 8", "--kv snapkv", "--kv snapkv --kv-ratio 1.5",
        "--kv snapkv --kv-budget 0", "--kv snapkv:window=64 --kv-budget 32",
        "--kv snapkv --kv-budget 8 --kv-ratio 0.5", "--kv snapkv --kv-budget 8 --kv-granularity x"}) {
    const std::string dump = d.file("bad.json");
    r = run_kvsieve("run -m " + model + " --ids " + ids + " -n 2 " + bad + " --dump-kept " + dump);
    EXPECT_NE(r.exit_code, 0) << bad;
    EXPECT_NE(r.err.find("kv"), std::string::npos) << bad << ": " << r.err;  // names the option
    EXPECT_FALSE(std::filesystem::exists(dump)) << bad;
  }
}

}  // namespace
}  // namespace kvsieve::testing
