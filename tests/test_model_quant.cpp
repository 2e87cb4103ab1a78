// Q8_0 and Q4_0 copies of a real model against its F32 weights: next-token
// agreement and KL divergence over a TinyStories text.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/cpu/cpu_backend.h"
#include "engine/context.h"
#include "test_util.h"

using namespace kvsieve;
using namespace kvsieve::testing;

namespace {

struct Agreement {
  double top1 = 0;     // fraction of positions with the same argmax
  double mean_kl = 0;  // mean KL(p_f32 || p_quant), nats
};

Agreement compare(const std::vector<float>& ref, const std::vector<float>& q, int64_t V) {
  Agreement a;
  const int64_t n = int64_t(ref.size()) / V;
  for (int64_t t = 0; t < n; ++t) {
    const float* r = ref.data() + t * V;
    const float* s = q.data() + t * V;
    int64_t ar = 0, as = 0;
    double mr = r[0], ms = s[0];
    for (int64_t i = 1; i < V; ++i) {
      if (r[i] > r[ar]) ar = i;
      if (s[i] > s[as]) as = i;
      mr = std::max<double>(mr, r[i]);
      ms = std::max<double>(ms, s[i]);
    }
    a.top1 += ar == as;
    double zr = 0, zs = 0;
    for (int64_t i = 0; i < V; ++i) {
      zr += std::exp(r[i] - mr);
      zs += std::exp(s[i] - ms);
    }
    double kl = 0;
    for (int64_t i = 0; i < V; ++i) {
      const double lp = r[i] - mr - std::log(zr), lq = s[i] - ms - std::log(zs);
      kl += std::exp(lp) * (lp - lq);
    }
    a.mean_kl += kl;
  }
  a.top1 /= double(n);
  a.mean_kl /= double(n);
  return a;
}

}  // namespace

TEST(Quantization, Q8AndQ4AgreeWithF32OnStories260K) {
  KVSIEVE_REQUIRE_SHARED("stories260K/stories260K.bin");
  KVSIEVE_REQUIRE_SHARED("text/tinystories_sample.txt");
  const std::string s = shared_data() + "/stories260K";
  TempDir d;
  auto r = run_kvsieve("convert --llama2c " + s + "/stories260K.bin --tokenizer " + s +
                       "/tok512.bin -o " + d.file("f32.gguf"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* t : {"q8_0", "q4_0"}) {
    r = run_kvsieve("convert " + d.file("f32.gguf") + " --type " + t + " -o " + d.file(std::string(t) + ".gguf"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  auto f32 = Model::load(d.file("f32.gguf"));
  const auto ids = f32->tokenizer()->encode(read_file(shared_data() + "/text/tinystories_sample.txt"), true);
  const int64_t n = std::min<int64_t>(int64_t(ids.size()), 500);
  const std::vector<int32_t> text(ids.begin(), ids.begin() + n);
  CpuBackend be(2);
  auto logits = [&](const Model& m) {
    Context sess(m, be);
    std::vector<float> all;
    sess.prefill(text, 128, &all);
    return all;
  };
  const auto ref = logits(*f32);
  const int64_t V = f32->config().n_vocab;
  const Agreement q8 = compare(ref, logits(*Model::load(d.file("q8_0.gguf"))), V);
  const Agreement q4 = compare(ref, logits(*Model::load(d.file("q4_0.gguf"))), V);
  std::printf("stories260K over %lld tokens: Q8_0 top-1 %.4f mean KL %.5f; Q4_0 top-1 %.4f mean KL %.5f\n",
              (long long)n, q8.top1, q8.mean_kl, q4.top1, q4.mean_kl);
  EXPECT_GE(q8.top1, 0.97);
  EXPECT_LE(q8.mean_kl, 0.005);
  // A 260K-parameter model with 64-wide rows is a hard case for 4-bit blocks
  // (measured: top-1 0.80, KL 0.128); the bounds catch a broken Q4_0 path
  // (random agreement would be ~0.0 and KL several nats).
  EXPECT_GE(q4.top1, 0.75);
  EXPECT_LE(q4.mean_kl, 0.20);
  EXPECT_LT(q8.mean_kl, q4.mean_kl);
}
