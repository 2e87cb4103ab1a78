// The one decode loop, used by `kvsieve run`, `kvsieve eval`, the public
// Session, LAQ's lookahead and Judge Q's targets: pick the next token from
// the logits, stop at end of generation or at the token limit, run the token,
// repeat.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "engine/context.h"
#include "model/sampler.h"

namespace kvsieve {

struct DecodeParams {
  int64_t max_tokens = 128;
  Sampler* sampler = nullptr;  // null: greedy (the lowest id among equal maxima)
  bool stop_at_eog = true;     // stop before an end-of-generation token
  int32_t first = -1;          // a token already chosen (LAQ's y1): emitted first, not sampled
  bool run_last = false;       // run the last token too (its K/V and queries are wanted)
};

// Starts from `logits` (the context's last ones), returns the tokens emitted.
// on_token(id) is called for each (false stops after it); after_step() after
// each token the model ran (decode-time re-selection). steps, when given,
// counts the tokens run.
std::vector<int32_t> decode_tokens(Context& ctx, const std::vector<float>& logits,
                                   const DecodeParams& p,
                                   const std::function<bool(int32_t)>& on_token = nullptr,
                                   const std::function<void()>& after_step = nullptr,
                                   int64_t* steps = nullptr);

}  // namespace kvsieve
