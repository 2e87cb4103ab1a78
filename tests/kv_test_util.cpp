#include "kv_test_util.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <numeric>

#include "core/npy.h"
#include "test_util.h"

namespace kvsieve::testing {

std::vector<std::string> kv_test_models() {
  std::vector<std::string> m = {"llama3-f32", "qwen2-f32"};
  if (std::filesystem::exists(shared_data() + "/stories260K/stories260K.bin"))
    m.push_back("stories260K");
  return m;
}

const Model& kv_test_model(const std::string& name) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<Model>> cache;
  static TempDir dir;
  std::lock_guard<std::mutex> lock(mu);
  auto& m = cache[name];
  if (!m) {
    if (name == "stories260K") {
      const std::string out = dir.file("stories260K.gguf"), src = shared_data() + "/stories260K";
      auto r = run_kvsieve("convert --llama2c " + src + "/stories260K.bin --tokenizer " + src +
                           "/tok512.bin -o " + out);
      EXPECT_EQ(r.exit_code, 0) << r.err;
      m = Model::load(out);
    } else {
      m = Model::load(fixtures() + "/hf/" + name);
    }
  }
  return *m;
}

std::vector<int32_t> kv_test_ids(const std::string& name, int64_t n) {
  const Model& m = kv_test_model(name);
  std::vector<int32_t> ids;
  if (name == "stories260K") {
    // Real text, so attention has the structure of a trained model.
    const std::string text = read_file(shared_data() + "/text/tinystories_sample.txt");
    ids = m.tokenizer()->encode(text.substr(0, size_t(n) * 4), true);
  } else {
    ids = read_npy_ids(fixtures() + "/hf/" + name + "/ids.npy");
  }
  while (int64_t(ids.size()) < n) ids.insert(ids.end(), ids.begin() + 1, ids.end());
  ids.resize(size_t(n));
  return ids;
}

std::string model_param_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (char& c : s)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

int32_t argmax(const std::vector<float>& v) {
  return int32_t(std::max_element(v.begin(), v.end()) - v.begin());
}

HeadRows head_rows(const KvStore& store, int64_t l, int64_t s) {
  HeadRows h;
  const auto p = store.positions(l, s);
  h.pos.assign(p.begin(), p.end());
  h.n = int64_t(h.pos.size());
  store.read_head(l, s, &h.k, &h.v);
  return h;
}

std::vector<std::vector<int32_t>> keep_lists(const KeepSets& k) {
  std::vector<std::vector<int32_t>> out;
  for (int64_t l = 0; l < k.n_layer; ++l)
    for (int64_t s = 0; s < k.n_heads; ++s) {
      const auto h = k.at(l, s);
      out.emplace_back(h.begin(), h.end());
    }
  return out;
}

KeepSets with_head(const KeepSets& k, int64_t l, int64_t s, std::vector<int32_t> pos) {
  auto lists = keep_lists(k);
  lists[size_t(l * k.n_heads + s)] = std::move(pos);
  return KeepSets::from_lists(k.n_layer, k.n_heads, lists);
}

EvictionConfig budget_cfg(const std::string& spec, int64_t tokens, Granularity g) {
  EvictionConfig c;
  c.spec = spec;
  c.budget.tokens = tokens;
  c.granularity = g;
  return c;
}

AttnGeometry attn_geometry(const Model& m) {
  const ModelConfig& c = m.config();
  return {c.n_layer, c.n_head, c.n_head_kv, c.head_dim};
}

Recorded record_prefill(const Model& m, const std::vector<int32_t>& ids) {
  const ModelConfig& c = m.config();
  Recorded r{c.n_layer, c.n_head, c.n_head_kv, c.head_dim, int64_t(ids.size()), {}, {}, {}};
  r.q.resize(size_t(r.L));
  CpuBackend be(1);
  Context s(m, be);
  s.record(RecordSpec{r.n, false});  // every query of the prompt
  s.prefill(ids, 64);  // several chunks, as in real use
  for (int64_t l = 0; l < r.L; ++l) {
    const ProbeBlock b = s.recorder()->window(l);
    EXPECT_EQ(b.n(), r.n);
    r.q[size_t(l)].assign(b.q.data(), b.q.data() + r.n * r.H * r.hd);
  }
  r.k.resize(size_t(r.L));
  std::vector<float> k;
  for (int64_t l = 0; l < r.L; ++l)
    for (int64_t g = 0; g < r.KV; ++g) {
      s.store().read_head(l, g, &k, nullptr);
      r.k[size_t(l)].insert(r.k[size_t(l)].end(), k.begin(), k.end());
    }
  // Plain loops: scores, max, exp, sum, divide.
  const int64_t n = r.n, group = r.H / r.KV;
  r.attn.assign(size_t(r.L * r.H * n * n), 0.0f);
  const float scale = 1.0f / std::sqrt(float(r.hd));
  std::vector<float> row(static_cast<size_t>(n));
  for (int64_t l = 0; l < r.L; ++l)
    for (int64_t h = 0; h < r.H; ++h)
      for (int64_t i = 0; i < n; ++i) {
        const float* q = r.q[size_t(l)].data() + (i * r.H + h) * r.hd;
        float mx = -INFINITY;
        for (int64_t j = 0; j <= i; ++j) {
          const float* k = r.key(l, h / group, j);
          float d = 0;
          for (int64_t t = 0; t < r.hd; ++t) d += q[t] * k[t];
          row[size_t(j)] = d * scale;
          mx = std::max(mx, row[size_t(j)]);
        }
        float sum = 0;
        for (int64_t j = 0; j <= i; ++j) sum += (row[size_t(j)] = std::exp(row[size_t(j)] - mx));
        for (int64_t j = 0; j <= i; ++j)
          r.attn[size_t(((l * r.H + h) * n + i) * n + j)] = row[size_t(j)] / sum;
      }
  return r;
}

std::vector<int32_t> naive_keep(const std::vector<double>& scores, int64_t budget, int64_t sinks,
                                int64_t window) {
  const int64_t n = int64_t(scores.size());
  std::vector<int32_t> keep;
  if (budget >= n) {
    keep.resize(size_t(n));
    std::iota(keep.begin(), keep.end(), 0);
    return keep;
  }
  std::vector<bool> kept(size_t(n), false);
  for (int64_t j = 0; j < n; ++j)
    if (j < sinks || j >= n - window) kept[size_t(j)] = true;
  int64_t count = std::count(kept.begin(), kept.end(), true);
  while (count < budget) {  // repeatedly take the best remaining row
    int64_t best = -1;
    for (int64_t j = 0; j < n; ++j)
      if (!kept[size_t(j)] && (best < 0 || scores[size_t(j)] > scores[size_t(best)])) best = j;
    kept[size_t(best)] = true;
    ++count;
  }
  for (int64_t j = 0; j < n; ++j)
    if (kept[size_t(j)]) keep.push_back(int32_t(j));
  return keep;
}

int64_t expect_same_keep(const KeepSets& ref, const KeepSets& got,
                         const std::vector<std::vector<double>>* ref_scores, double tol,
                         const std::string& what) {
  EXPECT_EQ(ref.n_layer, got.n_layer) << what;
  EXPECT_EQ(ref.n_heads, got.n_heads) << what;
  if (ref.n_layer != got.n_layer || ref.n_heads != got.n_heads) return 0;
  int64_t swaps = 0;
  for (int64_t l = 0; l < ref.n_layer; ++l)
    for (int64_t s = 0; s < ref.n_heads; ++s) {
      const auto ra = ref.at(l, s), rb = got.at(l, s);
      const std::vector<int32_t> a(ra.begin(), ra.end()), b(rb.begin(), rb.end());
      EXPECT_EQ(a.size(), b.size()) << what << " layer " << l << " head " << s;
      if (a == b) continue;
      std::vector<int32_t> only_ref, only_got;
      std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(only_ref));
      std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(only_got));
      bool ties = ref_scores && only_ref.size() == only_got.size();
      if (ties) {
        const auto& sc = (*ref_scores)[size_t(l * ref.n_heads + s)];
        double mx = 0;
        for (double v : sc) mx = std::max(mx, std::fabs(v));
        for (size_t i = 0; i < only_ref.size() && ties; ++i)
          ties = std::fabs(sc[size_t(only_ref[i])] - sc[size_t(only_got[i])]) <= tol * mx;
      }
      if (ties) {
        swaps += int64_t(only_ref.size());
      } else {
        ADD_FAILURE() << what << " layer " << l << " head " << s << ": reference keeps "
                      << ::testing::PrintToString(only_ref) << ", kvsieve keeps "
                      << ::testing::PrintToString(only_got) << " instead";
      }
    }
  return swaps;
}

}  // namespace kvsieve::testing
