// A K-quant file made by llama.cpp's own llama-quantize (not shipped: set
// KVSIEVE_LLAMACPP_Q4KM to a Q4_K_M quantization of models/kvsieve-tiny.gguf,
// e.g. `llama-quantize models/kvsieve-tiny.gguf OUT.gguf Q4_K_M`; skipped
// otherwise). It must load as llama.cpp wrote it (Q4_K and Q6_K tensors) and
// its next-token predictions over a text must follow the F16 model's.
// Measured with the llama-quantize of llama.cpp as vendored in
// llama-cpp-python 0.3.36 (ggml 0.25.3): top-1 agreement 0.743, relative RMS
// logit error 0.194 over 300 positions (kvsieve's own `convert --type
// q4_k_m` of the same model: 0.720 and 0.191: a 17.6M model with 256-wide
// rows loses much at 4 bits). Bounds: 0.65 and 0.25, room for another
// llama.cpp version's quantizer; a wrong layout gives ~0 agreement and O(1)
// error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "backend/cpu/cpu_backend.h"
#include "engine/context.h"
#include "model/model.h"
#include "test_util.h"

using namespace kvsieve;
using namespace kvsieve::testing;

TEST(LlamaCppKQuant, Q4KMFileFollowsTheF16Model) {
  const char* path = std::getenv("KVSIEVE_LLAMACPP_Q4KM");
  if (!path || !std::filesystem::exists(path))
    GTEST_SKIP() << "set KVSIEVE_LLAMACPP_Q4KM to llama-quantize's Q4_K_M of models/kvsieve-tiny.gguf";
  KVSIEVE_REQUIRE_SHARED("text/tinystories_sample.txt");
  const auto f16 = Model::load(std::string(KVSIEVE_SOURCE_DIR) + "/models/kvsieve-tiny.gguf");
  const auto q = Model::load(path);
  auto r = run_kvsieve(std::string("inspect ") + path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Q4_K "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Q6_K "), std::string::npos) << r.out;
  auto ids = f16->tokenizer()->encode(read_file(shared_data() + "/text/tinystories_sample.txt"), true);
  ids.resize(std::min<size_t>(ids.size(), 300));
  CpuBackend be(2);
  auto logits = [&](const Model& m) {
    Context ctx(m, be);
    std::vector<float> all;
    ctx.prefill(ids, 128, &all);
    return all;
  };
  const auto a = logits(*f16), b = logits(*q);
  const int64_t V = f16->config().n_vocab, n = int64_t(ids.size());
  double agree = 0, e = 0, s = 0;
  for (int64_t t = 0; t < n; ++t) {
    int64_t ia = 0, ib = 0;
    for (int64_t i = 0; i < V; ++i) {
      const size_t k = size_t(t * V + i);
      if (a[k] > a[size_t(t * V + ia)]) ia = i;
      if (b[k] > b[size_t(t * V + ib)]) ib = i;
      e += double(a[k] - b[k]) * (a[k] - b[k]);
      s += double(a[k]) * a[k];
    }
    agree += ia == ib;
  }
  std::printf("llama.cpp Q4_K_M vs F16 over %lld positions: top-1 %.3f, relative RMS logit error %.4f\n",
              (long long)n, agree / double(n), std::sqrt(e / s));
  EXPECT_GE(agree / double(n), 0.65);
  EXPECT_LT(std::sqrt(e / s), 0.25);
}
