// Shared by the KV eviction tests: a prefilled session whose every query was
// recorded, full attention matrices computed with plain loops (the naive
// reference the methods are checked against), and keep-set comparison.
#pragma once
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "engine/context.h"
#include "kv/evictor.h"
#include "model/model.h"

namespace kvsieve::testing {

// The models the KV tests run on: tiny random-weight HF fixtures (always
// present) and stories260K (when ../shared/data is).
std::vector<std::string> kv_test_models();
const Model& kv_test_model(const std::string& name);  // cached per test binary
std::vector<int32_t> kv_test_ids(const std::string& name, int64_t n);
AttnGeometry attn_geometry(const Model& m);
// An eviction config: method spec, tokens per head, granularity.
EvictionConfig budget_cfg(const std::string& spec, int64_t tokens,
                          Granularity g = Granularity::kKvHead);

// A test over one of kv_test_models(), with `n` prompt ids of it.
template <int64_t kPromptIds>
class KvModelTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    model_ = &kv_test_model(GetParam());
    ids_ = kv_test_ids(GetParam(), kPromptIds);
  }
  const Model* model_ = nullptr;
  std::vector<int32_t> ids_;
};
// gtest parameter names: the model name with non-alphanumerics as '_'.
std::string model_param_name(const ::testing::TestParamInfo<std::string>& info);

int32_t argmax(const std::vector<float>& v);

// Host copies of what one stored head holds: n rows, their positions, and
// their keys and values [n, head_dim] in f32.
struct HeadRows {
  int64_t n = 0;
  std::vector<int32_t> pos;
  std::vector<float> k, v;
};
HeadRows head_rows(const KvStore& store, int64_t l, int64_t s);
// Keep sets as one list per head, and back (tests edit single heads).
std::vector<std::vector<int32_t>> keep_lists(const KeepSets& k);
KeepSets with_head(const KeepSets& k, int64_t l, int64_t s, std::vector<int32_t> pos);

// Everything the naive references need about one prefill.
struct Recorded {
  int64_t L, H, KV, hd, n;
  std::vector<std::vector<float>> q;  // [L][n * H * hd] post-RoPE queries
  std::vector<std::vector<float>> k;  // [L][KV * n * hd] cached keys, head-major
  // Full causal attention [L][H][n][n] in f32 with plain loops (row i: 0 beyond i).
  std::vector<float> attn;
  float a(int64_t l, int64_t h, int64_t i, int64_t j) const {
    return attn[size_t(((l * H + h) * n + i) * n + j)];
  }
  const float* key(int64_t l, int64_t g, int64_t j) const {
    return k[size_t(l)].data() + (g * n + j) * hd;
  }
};
Recorded record_prefill(const Model& m, const std::vector<int32_t>& ids);

// Positions of one head kept by the plain rule: protected rows (first
// `sinks`, last `window`) plus the best `budget - protected` of the others
// by score (higher first; ties: earlier position). scores [n].
std::vector<int32_t> naive_keep(const std::vector<double>& scores, int64_t budget, int64_t sinks,
                                int64_t window);

// Compares keep sets head by head. A kept position that the reference
// dropped is allowed only when it is a tie under the reference scores
// (|difference| <= tol * max score of the head) with one the reference kept;
// the count of such swaps is returned (callers bound it).
int64_t expect_same_keep(const KeepSets& ref, const KeepSets& got,
                         const std::vector<std::vector<double>>* ref_scores = nullptr,
                         double tol = 1e-5, const std::string& what = "");

}  // namespace kvsieve::testing
