// How close a method's keep sets come to the ideal ones: for held-out
// prompts, the ideal keep set of each (layer, KV head) is the top-B prompt
// positions by the attention the model's own response pays to them (the
// Judge Q target, averaged over the head's query group). A method's score at
// budget B is |kept ∩ ideal| / B, averaged over layers, heads and prompts.
// Beside it, the share of the ideal set's attention mass the kept set holds
// (sum of the answer's attention over kept positions / over the ideal ones):
// most layers spread the answer's attention thinly, and there the set overlap
// counts positions that carry almost nothing, while the mass weighs each by
// what the answer actually read from it.
// Every method sees the same prompts, so each is also compared with the first
// method prompt by prompt (a paired difference and its standard error): the
// differences between methods are often a few points, well inside the spread
// of single prompts, and only the pairing says whether they are real.
// The response is always generated from the whole prompt; query-agnostic
// runs only cut earlier, as the eval does.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "kvsieve/judgeq.h"
#include "model/model.h"

namespace kvsieve {

// data: JSON lines as for training ("context" + "question", or "text").
std::vector<OverlapRow> keep_set_overlap(const Model& m, Backend& be, const std::string& data,
                                         const OverlapConfig& cfg);

}  // namespace kvsieve
