// Session::start / next_token and Session::decode_batch (the public API a
// server uses to batch the decode steps of many sessions): each session in
// a batch gets what it gets alone. On the CPU and, where there is one, on a
// GPU (each session a stream of its own, the pass on the first one's).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "kvsieve/kvsieve.h"
#include "test_util.h"

namespace kvsieve::testing {
namespace {

struct Policy {
  std::string spec;
  int64_t budget;
  int64_t decode_every;
};

std::unique_ptr<Session> make(const Engine& e, const Policy& p) {
  SessionOptions so;
  so.threads = 1;
  so.batch = 64;
  so.eviction.spec = p.spec;
  so.eviction.budget.tokens = p.budget;
  so.eviction.decode_every = p.decode_every;
  return e.new_session(so);
}

float max_abs(const std::vector<float>& v) {
  float m = 0;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

class ApiBatch : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "cuda" && !cuda_available())
      GTEST_SKIP() << "no GPU here (or this build has no CUDA): batched decode is not tested there";
    EngineOptions eo;
    eo.device = GetParam();
    eo.model = fixtures() + "/hf/llama3-f32";
    engine = Engine::load(eo);
    ids = read_npy_ids(fixtures() + "/hf/llama3-f32/ids.npy");
  }
  std::vector<int32_t> prompt(size_t n, size_t offset = 0) const {
    return std::vector<int32_t>(ids.begin() + offset, ids.begin() + offset + n);
  }
  std::shared_ptr<const Engine> engine;
  std::vector<int32_t> ids;
};

// One batched step gives each session the logits decode() gives it alone.
TEST_P(ApiBatch, DecodeBatchLogitsEqualDecodeAlone) {
  const std::vector<Policy> pols = {{"full", 0, 0}, {"snapkv", 40, 0}, {"h2o", 32, 8}, {"streamingllm", 24, 0}};
  const std::vector<size_t> lens = {120, 200, 90, 150};
  std::vector<std::unique_ptr<Session>> a, b;  // a: batched, b: alone
  std::vector<Session*> batch;
  std::vector<int32_t> next;
  for (size_t i = 0; i < pols.size(); ++i) {
    for (auto* v : {&a, &b}) {
      v->push_back(make(*engine, pols[i]));
      v->back()->prefill(prompt(lens[i], i * 7));
      v->back()->compress();
    }
    batch.push_back(a.back().get());
    next.push_back(ids[250 + i]);
  }
  for (int step = 0; step < 12; ++step) {
    Session::decode_batch(batch, next);
    for (size_t i = 0; i < pols.size(); ++i) {
      const std::vector<float>& alone = b[i]->decode(next[i]);
      const std::vector<float>& batched = a[i]->logits();
      ASSERT_EQ(alone.size(), batched.size());
      float diff = 0;
      for (size_t k = 0; k < alone.size(); ++k) diff = std::max(diff, std::fabs(alone[k] - batched[k]));
      // Only the rounding of the batched weight products may differ.
      EXPECT_LE(diff, 1e-5f * max_abs(alone)) << pols[i].spec << " step " << step;
      EXPECT_EQ(a[i]->n_past(), b[i]->n_past());
      EXPECT_EQ(a[i]->kv_bytes(), b[i]->kv_bytes()) << pols[i].spec << " step " << step;
      next[i] = int32_t(std::max_element(alone.begin(), alone.end()) - alone.begin());
    }
  }
  // The re-cutting policy did re-cut: its cache is below the uncut one.
  EXPECT_LT(a[2]->kv_bytes(), a[2]->kv_bytes_full());
}

// start() + next_token() + decode_batch() over sessions that join and leave
// at different steps generate what generate() generates for each alone.
TEST_P(ApiBatch, SteppedBatchEqualsGenerate) {
  const std::vector<Policy> pols = {{"laq++", 48, 0}, {"snapkv", 40, 0}, {"full", 0, 0}, {"pyramidkv", 48, 0}};
  const std::vector<int64_t> max_tokens = {9, 14, 5, 11};
  std::vector<std::vector<int32_t>> want, got(pols.size());
  for (size_t i = 0; i < pols.size(); ++i) {
    GenerateOptions g;
    g.max_tokens = max_tokens[i];
    g.stop_at_eog = false;
    auto s = make(*engine, pols[i]);
    // The question after the cut for the odd ones (query-agnostic).
    want.push_back(s->generate(prompt(160, i * 5), i % 2 ? prompt(12, 280) : std::vector<int32_t>{}, g));
  }
  std::vector<std::unique_ptr<Session>> live(pols.size());
  for (int step = 0;; ++step) {
    // Session i joins at step 2*i.
    for (size_t i = 0; i < pols.size(); ++i)
      if (step == int(2 * i)) {
        GenerateOptions g;
        g.max_tokens = max_tokens[i];
        g.stop_at_eog = false;
        live[i] = make(*engine, pols[i]);
        live[i]->start(prompt(160, i * 5), i % 2 ? prompt(12, 280) : std::vector<int32_t>{}, g);
      }
    std::vector<Session*> batch;
    std::vector<int32_t> next;
    bool any = false;
    for (size_t i = 0; i < pols.size(); ++i) {
      if (!live[i]) continue;
      any = true;
      const int32_t id = live[i]->next_token();
      if (id < 0) {
        live[i].reset();
        continue;
      }
      got[i].push_back(id);
      if (live[i]->done()) {
        live[i].reset();
        continue;
      }
      batch.push_back(live[i].get());
      next.push_back(id);
    }
    if (!any && step > int(2 * pols.size())) break;
    Session::decode_batch(batch, next);
  }
  for (size_t i = 0; i < pols.size(); ++i) {
    EXPECT_EQ(got[i], want[i]) << pols[i].spec;
    EXPECT_EQ(int64_t(got[i].size()), max_tokens[i]) << pols[i].spec;
  }
}

TEST_P(ApiBatch, DecodeBatchRefusesBadInput) {
  auto s = make(*engine, {"full", 0, 0});
  s->prefill(prompt(10));
  EXPECT_THROW(Session::decode_batch({s.get(), s.get()}, {1, 2}), Error);  // twice
  EXPECT_THROW(Session::decode_batch({s.get()}, {1, 2}), Error);           // sizes
  EXPECT_THROW(Session::decode_batch({s.get()}, {int32_t(engine->n_vocab())}), Error);
  Session::decode_batch({}, {});  // nothing to do
  EXPECT_EQ(s->next_token(), -1);  // no start(): nothing to generate
}

INSTANTIATE_TEST_SUITE_P(Devices, ApiBatch, ::testing::Values("cpu", "cuda"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kvsieve::testing
