#include "engine/generate.h"

namespace kvsieve {

std::vector<int32_t> decode_tokens(Context& ctx, const std::vector<float>& logits,
                                   const DecodeParams& p,
                                   const std::function<bool(int32_t)>& on_token,
                                   const std::function<void()>& after_step, int64_t* steps) {
  const Tokenizer* tok = ctx.model().tokenizer();
  const int64_t V = ctx.model().config().n_vocab;
  const float* lg = logits.data();
  std::vector<int32_t> out;
  for (int64_t i = 0; i < p.max_tokens; ++i) {
    const int32_t next = i == 0 && p.first >= 0 ? p.first
                         : p.sampler           ? p.sampler->sample(lg, V)
                                               : Sampler::argmax(lg, V);
    if (p.stop_at_eog && tok && tok->is_eog(next)) break;
    out.push_back(next);
    if (on_token && !on_token(next)) break;
    if (i + 1 == p.max_tokens && !p.run_last) break;  // no need to run the last token
    lg = ctx.decode(next).data();
    if (steps) ++*steps;
    if (after_step) after_step();
  }
  return out;
}

}  // namespace kvsieve
