// Judge Q's probe source: the m soft embeddings run through the model after
// the prompt (positions prompt_len ..), their post-RoPE queries and keys kept
// as probes; their rows are then removed from the cache, so the session goes
// on exactly at prompt_len.
#include "engine/probe_source.h"
#include "engine/soft_tokens.h"
#include "model/forward.h"

namespace kvsieve {
namespace {

class SoftTokenProbes final : public ProbeSource {
 public:
  SoftTokenProbes(const Policy& p, const Model& m, ThreadPool& pool)
      : m_(m), pool_(pool), soft_(read_soft_tokens(p.soft_path)) {
    check_soft_tokens_fit(soft_, m, p.soft_check);
  }

  std::vector<ProbeBlock> collect(Session& s, int32_t, const Budget&, size_t* peak) override {
    const ModelConfig& c = m_.config();
    const int64_t width = c.n_head * c.head_dim, hd = c.head_dim, KV = c.n_head_kv;
    std::vector<ProbeBlock> probes(size_t(c.n_layer));
    const int32_t n0 = s.n_past();
    Forward fwd(m_, pool_);
    std::vector<float> unused;
    Batch b;
    b.embd = soft_.embd.data();
    b.n = soft_.m;
    b.pos0 = n0;
    b.logits = false;
    fwd.run(b, s.cache(), unused, [&](const QueryEvent& e) {
      ProbeBlock& pb = probes[size_t(e.layer)];
      pb.q.assign(e.q, e.q + e.n * width);
      for (int64_t t = 0; t < e.n; ++t) pb.pos.push_back(e.pos0 + int32_t(t));
      // The soft tokens' own keys: the last n rows of each KV head.
      pb.k.resize(size_t(e.n * KV * hd));
      const int64_t repeat = e.cache.geometry().repeat;
      for (int64_t g = 0; g < KV; ++g) {
        const HeadView v = e.cache.head(e.layer, g * repeat);
        for (int64_t t = 0; t < e.n; ++t)
          std::copy_n(v.k + (v.n - e.n + t) * hd, hd, pb.k.data() + (t * KV + g) * hd);
      }
    });
    if (peak) *peak = s.cache().kv_bytes();
    s.cache().erase_from(n0);
    return probes;
  }

 private:
  const Model& m_;
  ThreadPool& pool_;
  SoftTokens soft_;
};

}  // namespace

std::unique_ptr<ProbeSource> make_soft_token_probes(const Policy& p, const Model& m,
                                                    ThreadPool& pool) {
  return std::make_unique<SoftTokenProbes>(p, m, pool);
}

}  // namespace kvsieve
