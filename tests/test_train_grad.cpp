// The Judge Q trainer's gradient: analytic d loss / d soft embeddings
// (SoftPass::backward) against central finite differences of the forward
// pass, in double precision, for every architecture variant and both losses;
// the float path against the double one.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/probe_source.h"
#include "backend/cpu/cpu_backend.h"
#include "engine/context.h"
#include "engine/soft_tokens.h"
#include "kv/scorer.h"
#include "kv_test_util.h"
#include "test_util.h"
#include "train/loss.h"
#include "train/trainer.h"
#include "train/overlap.h"
#include <nlohmann/json.hpp>
#include "train/soft_pass.h"

namespace kvsieve::testing {
namespace {

struct GradSetup {
  const Model* model;
  std::unique_ptr<CpuBackend> be;
  std::unique_ptr<Context> session;
  std::vector<double> E;  // [m, d]
  AttentionMaps target;
  int64_t m = 3;
};

GradSetup make_setup(const std::string& name, uint64_t seed) {
  GradSetup s;
  s.model = &kv_test_model(name);
  s.be = std::make_unique<CpuBackend>(2);
  s.session = std::make_unique<Context>(*s.model, *s.be);
  std::vector<int32_t> ids = kv_test_ids(name, 24);
  s.session->prefill(ids, 64);
  const int64_t d = s.model->config().n_embd;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, 0.5);
  s.E.resize(size_t(s.m * d));
  for (auto& x : s.E) x = noise(rng);
  // A target that is a distribution-like map, unlike the prediction.
  std::uniform_real_distribution<double> u(0.0, 2.0 / 24.0);
  const ModelConfig& c = s.model->config();
  s.target.reset(c.n_layer, c.n_head, 24);
  for (auto& x : s.target.a) x = u(rng);
  return s;
}

double loss_at(SoftPass<double>& pass, const GradSetup& s, const std::vector<double>& E,
               JudgeLoss kind, AttentionMaps* grad = nullptr) {
  AttentionMaps pred;
  pass.forward(E.data(), s.m, pred);
  return judge_loss(kind, pred, s.target, {}, grad);
}

class TrainGrad : public ::testing::TestWithParam<std::string> {};

TEST_P(TrainGrad, AnalyticMatchesFiniteDifferences) {
  for (JudgeLoss kind : {JudgeLoss::kMse, JudgeLoss::kKl}) {
    GradSetup s = make_setup(GetParam(), 11);
    SoftPass<double> pass(*s.model, s.session->store(), *s.be);
    AttentionMaps dmaps;
    loss_at(pass, s, s.E, kind, &dmaps);
    std::vector<double> dE(s.E.size());
    pass.backward(dmaps, dE.data());
    // Central differences on a spread of coordinates.
    std::mt19937_64 rng(5);
    double worst = 0;
    for (int k = 0; k < 24; ++k) {
      const size_t i = size_t(rng() % s.E.size());
      const double h = 1e-5;
      std::vector<double> Ep = s.E, Em = s.E;
      Ep[i] += h;
      Em[i] -= h;
      const double fd = (loss_at(pass, s, Ep, kind) - loss_at(pass, s, Em, kind)) / (2 * h);
      worst = std::max(worst, std::fabs(fd - dE[i]) / std::max({std::fabs(fd), std::fabs(dE[i]), 1e-9}));
      EXPECT_NEAR(dE[i], fd, 1e-3 * std::max(std::fabs(fd), 1e-7))
          << GetParam() << (kind == JudgeLoss::kMse ? " mse" : " kl") << " coordinate " << i;
    }
    std::printf("[ grad ] %s %s: worst relative error %.2e\n", GetParam().c_str(),
                kind == JudgeLoss::kMse ? "mse" : "kl", worst);
  }
}

TEST_P(TrainGrad, FloatPathAgreesWithDouble) {
  GradSetup s = make_setup(GetParam(), 3);
  SoftPass<double> pd(*s.model, s.session->store(), *s.be);
  SoftPass<float> pf(*s.model, s.session->store(), *s.be);
  AttentionMaps md, mf, gd, gf;
  pd.forward(s.E.data(), s.m, md);
  std::vector<float> Ef(s.E.begin(), s.E.end());
  pf.forward(Ef.data(), s.m, mf);
  for (size_t i = 0; i < md.a.size(); ++i) EXPECT_NEAR(md.a[i], mf.a[i], 1e-5);
  judge_loss(JudgeLoss::kMse, md, s.target, {}, &gd);
  judge_loss(JudgeLoss::kMse, mf, s.target, {}, &gf);
  std::vector<double> dd(s.E.size());
  std::vector<float> df(s.E.size());
  pd.backward(gd, dd.data());
  pf.backward(gf, df.data());
  double num = 0, den = 0;
  for (size_t i = 0; i < dd.size(); ++i) num += std::pow(dd[i] - df[i], 2), den += dd[i] * dd[i];
  EXPECT_LT(std::sqrt(num / den), 1e-3);
}

INSTANTIATE_TEST_SUITE_P(Models, TrainGrad,
                         ::testing::Values("llama3-f32", "qwen2-f32", "mistral-f32"),
                         model_param_name);

}  // namespace
}  // namespace kvsieve::testing

namespace kvsieve::testing {
namespace {

// What the trainer optimises is what Judge Q scores with at inference: the
// soft tokens' mean attention over the prompt, computed by the engine's own
// forward pass and probe scoring.
TEST(TrainSoftPass, MapsEqualTheInferenceProbeAttention) {
  const Model& m = kv_test_model("llama3-f32");
  CpuBackend be(2);
  Context s(m, be);
  const std::vector<int32_t> ids = kv_test_ids("llama3-f32", 40);
  s.prefill(ids, 64);
  const SoftTokens soft = soft_tokens_from_ids(m, {7, 8, 9, 10}, "test");
  AttentionMaps maps;
  SoftPass<float> pass(m, s.store(), be);
  pass.forward(soft.embd.data(), soft.m, maps);
  TempDir d;
  write_soft_tokens(d.file("s.gguf"), soft);
  EvictionConfig cfg;
  cfg.spec = "judgeq:soft=" + d.file("s.gguf");
  cfg.budget.tokens = 10;
  const Policy policy = make_policy(cfg.spec);
  auto source = make_probe_source(policy, cfg, m);
  size_t peak = 0;
  const std::vector<ProbeBlock> probes = source->collect(s, -1, cfg.budget, &peak);
  const ModelConfig& c = m.config();
  const AttnGeometry geo = attn_geometry(m);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const int64_t ld = s.store().max_rows(l);
    std::vector<float> att(size_t(c.n_head * ld));  // [n_head, ld]
    const ScoreInputs in{s.store(), l, geo, nullptr, nullptr, &probes[size_t(l)], ld};
    probe_scores(in, probes[size_t(l)], 0, probes[size_t(l)].n(), Reduce::kMean, att.data());
    for (int64_t h = 0; h < c.n_head; ++h)
      for (int64_t j = 0; j < 40; ++j)
        EXPECT_NEAR(maps.at(l, h, j), att[size_t(h * ld + j)], 1e-5) << l << " " << h << " " << j;
  }
}

}  // namespace
}  // namespace kvsieve::testing

namespace kvsieve::testing {
namespace {

// Training on stories260K: the loss goes down, a run is reproducible, and
// stopping at a checkpoint then resuming gives the same soft tokens as one run.
TEST(TrainJudgeq, LossDecreasesReproduciblyAndResumes) {
  KVSIEVE_REQUIRE_SHARED("stories260K/stories260K.bin");
  const Model& m = kv_test_model("stories260K");
  TempDir d;
  const std::string text = read_file(shared_data() + "/text/tinystories_sample.txt");
  std::string lines;
  for (int i = 0; i < 4; ++i) {
    nlohmann::json j = {{"context", text.substr(size_t(i) * 500, 420)},
                        {"question", " What happened next?"}};
    lines += j.dump() + "\n";
  }
  write_file(d.file("train.jsonl"), lines);
  TrainConfig c;
  c.data = d.file("train.jsonl");
  c.soft_tokens = 6;
  c.steps = 40;
  c.lr = 0.05;
  c.max_response = 16;
  c.init_text = " The end.";
  c.progress = false;
  c.out = d.file("a.gguf");
  c.target_dir = d.file("targets");
  CpuBackend be(2);
  const TrainResult a = train_judgeq(m, be, c);
  ASSERT_EQ(a.losses.size(), 40u);
  double first = 0, last = 0;
  for (int i = 0; i < 8; ++i) first += a.losses[size_t(i)], last += a.losses[a.losses.size() - 1 - size_t(i)];
  EXPECT_LT(last, 0.7 * first) << "the loss did not go down";
  // Same seed, same result, byte for byte.
  c.out = d.file("b.gguf");
  train_judgeq(m, be, c);
  EXPECT_EQ(read_soft_tokens(d.file("a.gguf")).embd, read_soft_tokens(d.file("b.gguf")).embd);
  // 20 steps, then resume to 40.
  c.out = d.file("c.gguf");
  c.stop_after = 20;
  train_judgeq(m, be, c);
  c.stop_after = 0;
  c.resume = true;
  const TrainResult r = train_judgeq(m, be, c);
  EXPECT_EQ(r.first_step, 20);
  EXPECT_EQ(read_soft_tokens(d.file("a.gguf")).embd, read_soft_tokens(d.file("c.gguf")).embd);
  // The trained file is a valid Judge Q soft-token file for this model.
  EXPECT_NO_THROW(check_soft_tokens_fit(read_soft_tokens(d.file("c.gguf")), m));
}

}  // namespace
}  // namespace kvsieve::testing

namespace kvsieve::testing {
namespace {

TEST(TrainJudgeq, KeepSetOverlapRanksMethods) {
  KVSIEVE_REQUIRE_SHARED("stories260K/stories260K.bin");
  const Model& m = kv_test_model("stories260K");
  TempDir d;
  const std::string text = read_file(shared_data() + "/text/tinystories_sample.txt");
  std::string lines;
  for (int i = 0; i < 3; ++i)
    lines += nlohmann::json({{"context", text.substr(size_t(i) * 700, 700)}}).dump() + "\n";
  write_file(d.file("held.jsonl"), lines);
  CpuBackend be(2);
  OverlapConfig cfg;
  cfg.methods = {"snapkv", "random"};
  cfg.budgets = {48, 96};
  cfg.max_response = 16;
  const auto rows = keep_set_overlap(m, be, d.file("held.jsonl"), cfg);
  ASSERT_EQ(rows.size(), 4u);
  for (const auto& r : rows) {
    EXPECT_GE(r.overlap, 0.0);
    EXPECT_LE(r.overlap, 1.0);
    EXPECT_EQ(r.prompts, 3);
  }
  // Attention-based selection finds more of what the answer attends to than chance.
  EXPECT_GT(rows[0].overlap, rows[2].overlap + 0.1);
  EXPECT_GT(rows[1].overlap, rows[3].overlap + 0.1);
  // Paired with the first method on the same prompts: the first against itself
  // is 0; the mean difference is the difference of the means; the spread of
  // three prompts gives standard errors.
  for (int i : {0, 1}) {
    EXPECT_EQ(rows[size_t(i)].vs_first, 0.0);
    EXPECT_EQ(rows[size_t(i)].vs_first_se, 0.0);
    EXPECT_NEAR(rows[size_t(i + 2)].vs_first, rows[size_t(i + 2)].overlap - rows[size_t(i)].overlap, 1e-12);
    EXPECT_GT(rows[size_t(i + 2)].vs_first_se, 0.0);
    EXPECT_GT(rows[size_t(i)].overlap_se, 0.0);
    // The kept set holds at most B positions, so at most the ideal's mass;
    // attention-based selection holds more of it than chance.
    for (int j : {i, i + 2}) {
      EXPECT_GT(rows[size_t(j)].mass, 0.0);
      EXPECT_LE(rows[size_t(j)].mass, 1.0 + 1e-9);
    }
    EXPECT_GT(rows[size_t(i)].mass, rows[size_t(i + 2)].mass + 0.1);
    EXPECT_EQ(rows[size_t(i)].mass_vs_first, 0.0);
    EXPECT_NEAR(rows[size_t(i + 2)].mass_vs_first, rows[size_t(i + 2)].mass - rows[size_t(i)].mass, 1e-12);
  }
}

// Query-agnostic: the cut comes after the context, so only context positions
// count, and a budget that covers the context but not the question is no cut.
TEST(TrainJudgeq, KeepSetOverlapQueryAgnosticCutsAfterTheContext) {
  KVSIEVE_REQUIRE_SHARED("stories260K/stories260K.bin");
  const Model& m = kv_test_model("stories260K");
  TempDir d;
  const std::string text = read_file(shared_data() + "/text/tinystories_sample.txt");
  const std::string ctx = text.substr(0, 600), question = text.substr(2000, 300);
  const int64_t n_ctx = int64_t(m.tokenizer()->encode(ctx, true).size());
  const int64_t n_all = int64_t(m.tokenizer()->encode(ctx + question, true).size());
  ASSERT_GT(n_all, n_ctx + 20);
  write_file(d.file("held.jsonl"), nlohmann::json({{"context", ctx}, {"question", question}}).dump() + "\n");
  CpuBackend be(2);
  OverlapConfig cfg;
  cfg.methods = {"snapkv", "random"};
  cfg.budgets = {48, n_ctx + 5};
  cfg.max_response = 16;
  const auto aware = keep_set_overlap(m, be, d.file("held.jsonl"), cfg);
  cfg.query_agnostic = true;
  const auto agnostic = keep_set_overlap(m, be, d.file("held.jsonl"), cfg);
  EXPECT_EQ(aware.size(), 4u);     // both budgets cut the whole prompt
  ASSERT_EQ(agnostic.size(), 2u);  // n_ctx + 5 keeps the whole context: nothing to compare
  for (const auto& r : agnostic) EXPECT_EQ(r.budget, 48);
  EXPECT_GT(agnostic[0].overlap, agnostic[1].overlap);  // snapkv over random
}

}  // namespace
}  // namespace kvsieve::testing
