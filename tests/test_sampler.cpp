#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "core/error.h"
#include "model/sampler.h"

using namespace kvsieve;

TEST(Sampler, GreedyPicksFirstMaximum) {
  std::vector<float> l = {0.1f, 2.0f, -1.0f, 2.0f};
  Sampler s({});
  EXPECT_EQ(s.sample(l.data(), 4), 1);
}

TEST(Sampler, SameSeedSameSequence) {
  std::vector<float> l(50);
  for (int i = 0; i < 50; ++i) l[i] = std::sin(float(i));
  SamplerParams p;
  p.temperature = 1.0f;
  p.seed = 42;
  Sampler a(p), b(p);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.sample(l.data(), 50), b.sample(l.data(), 50));
}

TEST(Sampler, TopKAndTopPRestrictTheSupport) {
  std::vector<float> l = {3.0f, 2.9f, 0.0f, -1.0f, 2.8f};
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 2;
  Sampler s(p);
  for (int i = 0; i < 500; ++i) {
    const int id = s.sample(l.data(), 5);
    EXPECT_TRUE(id == 0 || id == 1) << id;
  }
  // probs ~ {0.37, 0.33, 0.02, 0.01, 0.30}: top-p 0.5 keeps ids 0 and 1.
  SamplerParams q;
  q.temperature = 1.0f;
  q.top_p = 0.5f;
  Sampler t(q);
  for (int i = 0; i < 500; ++i) {
    const int id = t.sample(l.data(), 5);
    EXPECT_TRUE(id == 0 || id == 1) << id;
  }
}

TEST(Sampler, FrequenciesFollowSoftmax) {
  std::vector<float> l = {1.0f, 0.0f, -1.0f};
  SamplerParams p;
  p.temperature = 1.0f;
  p.seed = 7;
  Sampler s(p);
  std::map<int, int> count;
  const int N = 20000;
  for (int i = 0; i < N; ++i) ++count[s.sample(l.data(), 3)];
  const double z = std::exp(1.0) + 1 + std::exp(-1.0);
  EXPECT_NEAR(count[0] / double(N), std::exp(1.0) / z, 0.015);
  EXPECT_NEAR(count[2] / double(N), std::exp(-1.0) / z, 0.015);
}

TEST(Sampler, RejectsBadParameters) {
  SamplerParams p;
  p.temperature = -1;
  EXPECT_THROW(Sampler{p}, Error);
  p = {};
  p.top_p = 0;
  EXPECT_THROW(Sampler{p}, Error);
}
