// LAQ and Judge Q: the probe sources that run the model. LAQ's lookahead is
// checked step by step against decoding on a stage-1 cut cache, its keep
// sets against a naive reference; Judge Q with soft tokens made of real
// token embeddings must choose what SnapKV chooses with those tokens as its
// window; neither may leave anything in the cache.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "engine/compressor.h"
#include "engine/soft_tokens.h"
#include "kv/kept_dump.h"
#include "kv_test_util.h"
#include "test_util.h"

namespace kvsieve::testing {
namespace {

struct Cut {
  EvictionReport report;
  std::vector<int32_t> probe_tokens;
  std::vector<std::vector<float>> logits;  // prompt's last, then `steps` greedy decode steps
  int32_t n_past_after = 0;
  int32_t max_pos_after = -1;
};

// Prefill, cut with a Compressor (first answer token: greedy), decode.
Cut cut_with(const Model& m, const std::vector<int32_t>& ids, const EvictionConfig& c,
             int steps = 4) {
  CpuBackend be(2);
  Context s(m, be);
  Compressor comp(c, m);
  s.record(comp.record_spec());
  Cut out;
  out.logits.push_back(s.prefill(ids, 64));
  const int32_t first = argmax(out.logits[0]);
  out.report = comp.compress(s, first);
  out.probe_tokens = comp.probe_tokens();
  out.n_past_after = s.n_past();
  for (int64_t l = 0; l < s.store().geometry().n_layer; ++l)
    for (int64_t h = 0; h < s.store().n_stored(); ++h) {
      const auto pos = s.store().positions(l, h);
      if (!pos.empty()) out.max_pos_after = std::max(out.max_pos_after, pos.back());
    }
  int32_t t = first;
  for (int i = 0; i < steps; ++i) {
    out.logits.push_back(s.decode(t));
    t = argmax(out.logits.back());
  }
  return out;
}

using KvProbes = KvModelTest<180>;

TEST_P(KvProbes, LaqWithoutLookaheadIsSnapKV) {
  for (auto g : {Granularity::kKvHead, Granularity::kQueryHead}) {
    const Cut laq = cut_with(*model_, ids_, budget_cfg("laq:n=0,window=8", 40, g));
    const Cut snap = cut_with(*model_, ids_, budget_cfg("snapkv:window=8,kernel=7,pool=max", 40, g));
    EXPECT_EQ(keep_lists(laq.report.kept), keep_lists(snap.report.kept)) << granularity_name(g);
    EXPECT_TRUE(laq.probe_tokens.empty());
  }
}

TEST_P(KvProbes, LaqMatchesANaiveReference) {
  const int64_t B = 40, w = 8, steps = 6;
  const Model& m = *model_;
  const ModelConfig& c = m.config();
  // The lookahead by hand: a second session cut by SnapKV (window 32, max-pool 7)
  // decodes greedily from the first answer token; its queries are the probes.
  CpuBackend be(1);
  Context b(m, be);
  Evictor stage1(budget_cfg("snapkv:window=32,kernel=7,pool=max", B), attn_geometry(m));
  b.record(stage1.record_spec());
  int32_t tok = argmax(b.prefill(ids_, 64));
  stage1.compress(b.store(), b.recorder());
  b.record(RecordSpec{steps, false});  // from now on: the lookahead's queries
  std::vector<int32_t> looked;
  for (int64_t i = 0; i < steps; ++i) {
    if (m.tokenizer() && m.tokenizer()->is_eog(tok)) break;
    looked.push_back(tok);
    tok = argmax(b.decode(tok));
  }
  std::vector<std::vector<float>> probe_q(size_t(c.n_layer));  // [L][steps * H * hd]
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const ProbeBlock pb = b.recorder()->window(l);
    probe_q[size_t(l)].assign(pb.q.data(), pb.q.data() + pb.n() * c.n_head * c.head_dim);
  }
  const Cut laq = cut_with(m, ids_, budget_cfg(fmt::format("laq++:n={}", steps), B));
  EXPECT_EQ(laq.probe_tokens, looked) << "lookahead tokens = greedy tokens on the stage-1 cache";

  // Naive scores: each probe's softmax over all prompt keys, plus the last w
  // prompt queries' causal rows, summed; max-pool 7 over [0, n - w); group mean.
  const Recorded r = record_prefill(m, ids_);
  const int64_t n = r.n, group = r.H / r.KV, np = int64_t(looked.size());
  std::vector<std::vector<double>> scores;
  for (int64_t l = 0; l < r.L; ++l) {
    std::vector<std::vector<double>> per_q(size_t(r.H), std::vector<double>(size_t(n), 0.0));
    for (int64_t h = 0; h < r.H; ++h) {
      for (int64_t t = 0; t < np; ++t) {
        const float* q = probe_q[size_t(l)].data() + (t * r.H + h) * r.hd;
        std::vector<double> row(static_cast<size_t>(n));
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < n; ++j) {
          double d = 0;
          for (int64_t k = 0; k < r.hd; ++k) d += double(q[k]) * r.key(l, h / group, j)[k];
          row[size_t(j)] = d / std::sqrt(double(r.hd));
          mx = std::max(mx, row[size_t(j)]);
        }
        for (auto& x : row) sum += (x = std::exp(x - mx));
        for (int64_t j = 0; j < n; ++j) per_q[size_t(h)][size_t(j)] += row[size_t(j)] / sum;
      }
      for (int64_t i = n - w; i < n; ++i)
        for (int64_t j = 0; j <= i; ++j) per_q[size_t(h)][size_t(j)] += r.a(l, h, i, j);
      // max-pool the prefix
      std::vector<double> pooled(per_q[size_t(h)]);
      for (int64_t j = 0; j < n - w; ++j) {
        double best = -INFINITY;
        for (int64_t k = std::max<int64_t>(0, j - 3); k <= std::min(n - w - 1, j + 3); ++k)
          best = std::max(best, per_q[size_t(h)][size_t(k)]);
        pooled[size_t(j)] = best;
      }
      per_q[size_t(h)] = pooled;
    }
    for (int64_t g = 0; g < r.KV; ++g) {
      std::vector<double> s(size_t(n), 0.0);
      for (int64_t h = g * group; h < (g + 1) * group; ++h)
        for (int64_t j = 0; j < n; ++j) s[size_t(j)] += per_q[size_t(h)][size_t(j)] / double(group);
      scores.push_back(s);
    }
  }
  std::vector<std::vector<int32_t>> ref_lists;
  for (const auto& s : scores) ref_lists.push_back(naive_keep(s, B, 0, w));
  const KeepSets ref = KeepSets::from_lists(r.L, r.KV, ref_lists);
  const int64_t swaps = expect_same_keep(ref, laq.report.kept, &scores, 1e-5, "laq++");
  EXPECT_LE(swaps * 100, ref.total());
}

TEST_P(KvProbes, NothingOfTheProbesRemainsAndDecodingMatchesARestoredSession) {
  TempDir d;
  const std::string soft = d.file("soft.gguf");
  write_soft_tokens(soft, soft_tokens_from_ids(*model_, {ids_[5], ids_[9], ids_[11], ids_[30]},
                                               "test"));
  for (const std::string& spec :
       std::vector<std::string>{"laq", "laq++", "judgeq:soft=" + soft, "adakv:base=laq++"}) {
    for (auto g : {Granularity::kKvHead, Granularity::kQueryHead}) {
      const Cut cut = cut_with(*model_, ids_, budget_cfg(spec, 48, g), 5);
      const std::string what = spec + " " + granularity_name(g);
      EXPECT_EQ(cut.n_past_after, int32_t(ids_.size())) << what;
      EXPECT_LT(cut.max_pos_after, int32_t(ids_.size())) << what << ": probe rows left behind";
      if (spec.rfind("adakv", 0) != 0) {
        for (const auto& k : keep_lists(cut.report.kept)) EXPECT_EQ(k.size(), 48u) << what;
      }
      // A fresh session cut to the same keep sets decodes the same logits.
      CpuBackend be(2);
      Context s(*model_, be);
      s.prefill(ids_, 64);
      if (g == Granularity::kQueryHead)
        s.store().replicate(model_->config().n_head / model_->config().n_head_kv);
      s.store().retain(cut.report.kept);
      int32_t t = argmax(cut.logits[0]);
      for (size_t i = 1; i < cut.logits.size(); ++i) {
        const auto& lg = s.decode(t);
        EXPECT_EQ(lg, cut.logits[i]) << what << " step " << i;
        t = argmax(lg);
      }
    }
  }
}

TEST_P(KvProbes, JudgeqWithTokenEmbeddingsIsASnapKVWindowOfThoseTokens) {
  // Prompt P (first 150 ids) and "question" Q (the next 12). Soft tokens = the
  // embeddings of Q run after P see exactly what Q's own queries see when Q
  // is the last part of the prompt; so Judge Q on P keeps what SnapKV with a
  // window of |Q| keeps of P on P + Q.
  const std::vector<int32_t> p(ids_.begin(), ids_.begin() + 150);
  const std::vector<int32_t> q(ids_.begin() + 150, ids_.begin() + 162);
  TempDir d;
  const std::string soft = d.file("q.gguf");
  write_soft_tokens(soft, soft_tokens_from_ids(*model_, q, "question"));
  for (auto g : {Granularity::kKvHead, Granularity::kQueryHead}) {
    const Cut jq = cut_with(*model_, p, budget_cfg("judgeq:soft=" + soft + ",kernel=7,pool=max", 30, g));
    std::vector<int32_t> pq(p);
    pq.insert(pq.end(), q.begin(), q.end());
    const Cut snap = cut_with(*model_, pq, budget_cfg("snapkv:window=12,kernel=7,pool=max", 42, g));
    auto snap_p = keep_lists(snap.report.kept);
    for (auto& k : snap_p) k.resize(k.size() - 12);  // drop the window (Q)
    EXPECT_EQ(keep_lists(jq.report.kept), snap_p) << granularity_name(g);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, KvProbes, ::testing::ValuesIn(kv_test_models()),
                         model_param_name);

TEST(SoftTokens, FileRoundTripAndModelBinding) {
  const Model& llama = kv_test_model("llama3-f32");
  const Model& qwen = kv_test_model("qwen2-f32");
  TempDir d;
  const SoftTokens s = soft_tokens_from_ids(llama, {1, 2, 3}, "init:test");
  write_soft_tokens(d.file("s.gguf"), s);
  const SoftTokens r = read_soft_tokens(d.file("s.gguf"));
  EXPECT_EQ(r.embd, s.embd);
  EXPECT_EQ(r.m, 3);
  EXPECT_EQ(r.fingerprint, model_fingerprint(llama));
  EXPECT_NO_THROW(check_soft_tokens_fit(r, llama));
  try {
    check_soft_tokens_fit(r, qwen);
    ADD_FAILURE() << "soft tokens of llama3 accepted by qwen2";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("qwen2"), std::string::npos) << e.what();
  }
  SoftTokens other = r;
  other.fingerprint = "0000000000000000";
  EXPECT_THROW(check_soft_tokens_fit(other, llama), Error);
  EXPECT_NO_THROW(check_soft_tokens_fit(other, llama, /*check_weights=*/false));
  // Not a soft-token file, or a truncated one.
  EXPECT_THROW(read_soft_tokens(fixtures() + "/hf/llama3-f32/ids.npy"), Error);
  const std::string bytes = read_file(d.file("s.gguf"));
  write_file(d.file("t.gguf"), bytes.substr(0, bytes.size() / 2));
  EXPECT_THROW(read_soft_tokens(d.file("t.gguf")), Error);
}

TEST(SoftTokens, CliInitAndJudgeqRun) {
  TempDir d;
  const std::string model = fixtures() + "/hf/llama3-f32", ids = model + "/ids.npy";
  auto r = run_kvsieve("judgeq-init -m " + model + " --ids " + ids + " --count 8 -o " +
                       d.file("soft.gguf"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_kvsieve("run -m " + model + " --ids " + ids + " -n 3 --kv judgeq:soft=" +
                  d.file("soft.gguf") + " --kv-budget 20 --dump-kept " + d.file("k.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(read_file(d.file("k.json")).find("\"method\":\"judgeq:"), std::string::npos);
  r = run_kvsieve("run -m " + model + " --ids " + ids + " -n 3 --kv laq++ --kv-budget 20");
  EXPECT_NE(r.exit_code, 0);  // stage 1 (SnapKV, window 32) does not fit 20 tokens
  EXPECT_NE(r.err.find("laq++ stage 1"), std::string::npos) << r.err;
  r = run_kvsieve("run -m " + model + " --ids " + ids + " -n 3 --kv laq++ --kv-budget 40 --dump-kept " +
                  d.file("l.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(read_file(d.file("l.json")).find("\"method\":\"laq++:"), std::string::npos);
  EXPECT_NE(r.err.find("probes"), std::string::npos) << r.err;  // lookahead time reported
  // Soft tokens of another model are refused before anything runs.
  r = run_kvsieve("run -m " + fixtures() + "/hf/qwen2-f32 --ids " + ids +
                  " -n 3 --kv judgeq:soft=" + d.file("soft.gguf") + " --kv-budget 20");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("soft tokens"), std::string::npos) << r.err;
  r = run_kvsieve("run -m " + model + " --ids " + ids + " -n 3 --kv judgeq --kv-budget 20");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("soft=FILE"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace kvsieve::testing
