// LAQ's probe source. After the prompt: copy the cache, cut the copy to the
// same budget with the stage-1 method (SnapKV by default), decode up to n
// tokens greedily on it from the first answer token (positions continue
// after the prompt, stop at end of generation), and keep every layer's
// post-RoPE query of every step. The copy and the lookahead tokens are then
// dropped; only the queries leave.
#include <algorithm>

#include "core/error.h"
#include "engine/probe_source.h"
#include "model/forward.h"

namespace kvsieve {
namespace {

class LookaheadProbes final : public ProbeSource {
 public:
  LookaheadProbes(const Policy& p, const EvictionConfig& cfg, const Model& m, ThreadPool& pool)
      : m_(m), pool_(pool), n_(p.lookahead) {
    try {
      stage1_ = std::make_unique<Evictor>(stage1_config(p, cfg), geometry(m), &pool);
    } catch (const Error& e) {
      fail("{} stage 1 ({}): {}", p.method, p.stage1_spec, e.what());
    }
  }

  void observe(const QueryEvent& e) override { stage1_->observe(e); }
  bool needs_first_token() const override { return true; }

  std::vector<ProbeBlock> collect(Session& s, int32_t first, const Budget& budget,
                                  size_t* peak) override {
    const ModelConfig& c = m_.config();
    const int64_t width = c.n_head * c.head_dim;
    std::vector<ProbeBlock> probes(size_t(c.n_layer));
    tokens_.clear();
    KvCache tmp = s.cache();  // the full prompt cache stays as it is
    stage1_->cut(tmp, budget);  // the stage-1 evictor stays as it was
    size_t most = s.cache().kv_bytes() + tmp.kv_bytes();
    Forward fwd(m_, pool_);
    std::vector<float> logits;
    const Tokenizer* tok = m_.tokenizer();
    int32_t next = first;
    for (int64_t step = 0; step < n_; ++step) {
      if (tok && tok->is_eog(next)) break;
      tokens_.push_back(next);
      Batch b;
      b.ids = &next;
      b.n = 1;
      b.pos0 = s.n_past() + int32_t(step);
      fwd.run(b, tmp, logits, [&](const QueryEvent& e) {
        ProbeBlock& pb = probes[size_t(e.layer)];
        pb.q.insert(pb.q.end(), e.q, e.q + width);
        pb.pos.push_back(e.pos0);
      });
      most = std::max(most, s.cache().kv_bytes() + tmp.kv_bytes());
      next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    }
    if (peak) *peak = most;
    return probes;
  }

  const std::vector<int32_t>& tokens() const override { return tokens_; }

 private:
  static EvictionConfig stage1_config(const Policy& p, const EvictionConfig& cfg) {
    EvictionConfig c = cfg;
    c.spec = p.stage1_spec;
    c.preset.clear();
    c.decode_every = 0;
    return c;
  }
  static AttnGeometry geometry(const Model& m) {
    const ModelConfig& c = m.config();
    return {c.n_layer, c.n_head, c.n_head_kv, c.head_dim};
  }

  const Model& m_;
  ThreadPool& pool_;
  int64_t n_;
  std::unique_ptr<Evictor> stage1_;
  std::vector<int32_t> tokens_;
};

}  // namespace

std::unique_ptr<ProbeSource> make_lookahead_probes(const Policy& p, const EvictionConfig& cfg,
                                                   const Model& m, ThreadPool& pool) {
  return std::make_unique<LookaheadProbes>(p, cfg, m, pool);
}

}  // namespace kvsieve
