// The model the project ships (models/kvsieve-tiny.gguf, issue 7): it loads,
// and with the full cache it still finds the needle in held-out RULER
// niah_single_1 prompts at 2K tokens (issue 7 asks > 90 % of 20 prompts); the
// Judge Q soft tokens shipped beside it were made for it (issue 5).
#include <gtest/gtest.h>

#include <filesystem>

#include "engine/soft_tokens.h"
#include "backend/cpu/cpu_backend.h"
#include "eval/runner.h"
#include "model/model.h"
#include "test_util.h"
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>

namespace kvsieve::testing {
namespace {

std::string shipped_model() { return std::string(KVSIEVE_SOURCE_DIR) + "/models/kvsieve-tiny.gguf"; }

TEST(ShippedModel, FullCacheFindsTheNeedleAt2K) {
  if (!std::filesystem::exists(shipped_model())) GTEST_SKIP() << "models/kvsieve-tiny.gguf is not in this checkout";
#ifdef KVSIEVE_SANITIZED
  // An accuracy check: 40 K tokens of prefill, several minutes under ASan, and no
  // code path the other tests do not already run there. The Release suite runs it.
  GTEST_SKIP() << "accuracy test: run by the Release suite (scripts/test.sh), not under sanitizers";
#endif
  auto m = Model::load(shipped_model());
  ASSERT_NE(m->tokenizer(), nullptr);
  EXPECT_EQ(m->config().n_ctx_train, 4096);
  EvalConfig c;
  c.tasks = {"niah_single_1"};
  c.lengths = {2048};
  c.samples = 20;
  c.seed = 500000;  // held out: not the seeds of the model card's own runs
  c.progress = false;
  TempDir d;
  c.out_path = d.file("r.jsonl");
  CpuBackend be(2);
  const EvalTotals t = eval::run_eval(*m, be, c);
  ASSERT_EQ(t.rows_written, 20);
  double sum = 0;
  std::istringstream in(read_file(c.out_path));
  std::string line;
  while (std::getline(in, line)) sum += nlohmann::json::parse(line)["score"].get<double>();
  EXPECT_GT(sum / 20.0, 0.9) << "full-cache niah_single_1 accuracy at 2K";
}

// Both soft-token files load, were trained (not just initialised) for these
// very weights, with the placement their names say, and inspect shows them.
TEST(ShippedModel, JudgeqSoftTokensAreTrainedForIt) {
  if (!std::filesystem::exists(shipped_model())) GTEST_SKIP() << "models/kvsieve-tiny.gguf is not in this checkout";
  auto m = Model::load(shipped_model());
  const std::string dir = std::string(KVSIEVE_SOURCE_DIR) + "/models/";
  // The card's recipe (scripts/judgeq_study.sh): 16 soft tokens query-aware, 64 query-agnostic.
  const std::pair<const char*, int> files[] = {{"kvsieve-tiny.judgeq.gguf", 16},
                                               {"kvsieve-tiny.judgeq-agnostic.gguf", 64}};
  for (const auto& [name, m_expected] : files) {
    SCOPED_TRACE(name);
    const SoftTokens s = read_soft_tokens(dir + name);
    EXPECT_NO_THROW(check_soft_tokens_fit(s, *m));
    EXPECT_EQ(s.m, m_expected);
    EXPECT_EQ(s.origin.rfind("trained: ", 0), 0u) << s.origin;
    const bool agnostic = std::string(name).find("agnostic") != std::string::npos;
    EXPECT_EQ(s.origin.find("query-agnostic") != std::string::npos, agnostic) << s.origin;
    const auto r = run_kvsieve("inspect " + dir + name);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("Judge Q soft tokens"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(std::to_string(m_expected) + " x 256"), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace kvsieve::testing
