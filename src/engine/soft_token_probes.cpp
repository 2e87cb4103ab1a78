// Judge Q's probe source: the m soft embeddings run through the model after
// the prompt (positions prompt_len ..), their post-RoPE queries and keys kept
// as probes; their rows are then removed from the store, so the context goes
// on exactly at prompt_len.
#include "engine/probe_source.h"
#include "engine/soft_tokens.h"

namespace kvsieve {
namespace {

class SoftTokenProbes final : public ProbeSource {
 public:
  SoftTokenProbes(const Policy& p, const Model& m) : m_(m), soft_(read_soft_tokens(p.soft_path)) {
    check_soft_tokens_fit(soft_, m, p.soft_check);
  }

  std::vector<ProbeBlock> collect(Context& ctx, int32_t, const Budget&, size_t* peak) override {
    const ModelConfig& c = m_.config();
    Backend& be = ctx.backend();
    const int32_t n0 = ctx.n_past();
    Recorder rec(be, c.n_layer, c.n_head, c.head_dim, RecordSpec{soft_.m, false});
    ctx.run_embeddings(soft_.embd.data(), soft_.m, &rec);
    std::vector<ProbeBlock> probes(size_t(c.n_layer));
    for (int64_t l = 0; l < c.n_layer; ++l) {
      ProbeBlock& pb = probes[size_t(l)];
      pb = rec.window(l);
      // The soft tokens' own keys: the last m rows of each KV head.
      pb.k.resize(soft_.m * c.n_head_kv * c.head_dim);
      be.read_keys(ctx.store().layer(l), ctx.store().rows(l, 0) - soft_.m, soft_.m, pb.k.data());
    }
    if (peak) *peak = ctx.store().kv_bytes();
    ctx.erase_from(n0);
    return probes;
  }

 private:
  const Model& m_;
  SoftTokens soft_;
};

}  // namespace

std::unique_ptr<ProbeSource> make_soft_token_probes(const Policy& p, const Model& m) {
  return std::make_unique<SoftTokenProbes>(p, m);
}

}  // namespace kvsieve
