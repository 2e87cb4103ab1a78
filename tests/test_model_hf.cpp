// Tiny random-weight models of every architecture variant, made and run by
// Hugging Face transformers on a GPU box (scripts/hf_reference), against
// kvsieve: from the safetensors folder and after conversion to GGUF.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/npy.h"
#include "backend/cpu/cpu_backend.h"
#include "engine/context.h"
#include "test_util.h"

using namespace kvsieve;
using namespace kvsieve::testing;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> fixture_names() {
  std::vector<std::string> names;
  const fs::path dir = fs::path(fixtures()) / "hf";
  if (!fs::exists(dir)) return names;
  for (const auto& e : fs::directory_iterator(dir))
    if (fs::exists(e.path() / "config.json") && fs::exists(e.path() / "logits.npy"))
      names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<float> kvsieve_logits(const std::string& model_path, const std::vector<int32_t>& ids,
                                  int64_t n_batch) {
  auto m = Model::load(model_path);
  CpuBackend be(2);
  Context s(*m, be);
  std::vector<float> all;
  s.prefill(ids, n_batch, &all);
  return all;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

class HfFixture : public ::testing::TestWithParam<std::string> {
 protected:
  fs::path dir() const { return fs::path(fixtures()) / "hf" / GetParam(); }
  nlohmann::json reference() const {
    std::ifstream f(dir() / "reference.json");
    return f ? nlohmann::json::parse(f) : nlohmann::json::object();
  }
  bool is_bf16() const { return fs::exists(dir() / "logits_f32.npy"); }
  // F32 models: transformers' logits, 1e-4. BF16 models: kvsieve computes in
  // f32 from the bf16 weights, so it must match transformers' f32 run of the
  // same weights at 1e-4, and be no further from transformers' own bf16 run
  // than that f32 run is.
  void check_logits(const std::vector<float>& ours, const std::string& what) {
    const auto ref = read_npy_f32((dir() / "logits.npy").string());
    if (!is_bf16()) {
      std::printf("%s %s: max abs error vs transformers %.3g\n", GetParam().c_str(), what.c_str(),
                  max_abs_diff(ours, ref));
      EXPECT_LE(max_abs_diff(ours, ref), 1e-4f) << what;
      return;
    }
    const auto ref32 = read_npy_f32((dir() / "logits_f32.npy").string());
    const float own = max_abs_diff(ref32, ref);  // transformers bf16 vs its f32 run
    std::printf("%s %s: vs transformers f32 run %.3g; vs its bf16 run %.3g (its own bf16 error %.3g)\n",
                GetParam().c_str(), what.c_str(), max_abs_diff(ours, ref32), max_abs_diff(ours, ref), own);
    EXPECT_LE(max_abs_diff(ours, ref32), 1e-4f) << what;
    EXPECT_LE(max_abs_diff(ours, ref), own + 1e-4f) << what;
  }
};

}  // namespace

TEST_P(HfFixture, FolderMatchesTransformers) {
  const auto ids = read_npy_ids((dir() / "ids.npy").string());
  // Chunked prefill (chunks of 64) must give the same logits as one pass.
  check_logits(kvsieve_logits(dir().string(), ids, 64), "HF folder, chunks of 64");
}

TEST_P(HfFixture, GgufConversionMatchesTransformers) {
  const auto ids = read_npy_ids((dir() / "ids.npy").string());
  TempDir t;
  auto r = run_kvsieve("convert " + dir().string() + " -o " + t.file("m.gguf"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  check_logits(kvsieve_logits(t.file("m.gguf"), ids, 512), "GGUF");
}

TEST_P(HfFixture, CliLogitsWritesTheSameArray) {
  TempDir t;
  auto r = run_kvsieve("logits -m " + dir().string() + " --ids " + (dir() / "ids.npy").string() +
                       " --out " + t.file("l.npy") + " -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<int64_t> shape;
  const auto ours = read_npy_f32(t.file("l.npy"), &shape);
  const auto ids = read_npy_ids((dir() / "ids.npy").string());
  ASSERT_EQ(shape.size(), 2u);
  EXPECT_EQ(shape[0], int64_t(ids.size()));
  check_logits(ours, "kvsieve logits");
}

INSTANTIATE_TEST_SUITE_P(Transformers, HfFixture, ::testing::ValuesIn(fixture_names()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(HfFixture);
