// Ada-KV: how one layer's budget is split across its heads by score.
//
// The reference of the split (the CPU runs it; a device may run the same
// rule in its own memory, see Backend::adakv_split).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/select.h"

namespace kvsieve {

// Splits one layer's budget (keep rows per head, window included, for every
// head) across its H heads by score. scores [H, ld] (host) are the pooled
// scores, rows[h] of them in head h; protected rows are kept by every head.
// Returns rows kept per head. Scores rank as top_k ranks them (NaN last).
//   variant "kvpress": each head first keeps its protected rows and its best
//     int(keep * floor) rows; the rest of the layer's keep * heads rows go to
//     the best remaining scores of any head (ties: lower head, then earlier row).
//   variant "kvcache-factory": with B = keep - window, each head's sorted
//     scores are scaled by sum(top B) / sum(all); the heads' counts among the
//     best B * heads of the layer set cap = round(count (1 - floor) + int(B floor)).
// Throws Error when a head's protected rows do not fit in keep, or for an
// unknown variant.
std::vector<int64_t> adakv_split(const float* scores, int64_t ld, const int64_t* rows, int64_t H,
                                 int64_t keep, Protect p, double floor, const std::string& variant);

}  // namespace kvsieve
