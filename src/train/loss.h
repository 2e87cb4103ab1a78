// Judge Q's training losses between the soft tokens' attention maps and the
// target maps (the attention the model's own response pays to the prompt).
//   mse: mean over all (layer, head, position) of (pred − target)², the paper's.
//   kl:  per (layer, head) both rows normalised to distributions over the
//        prompt, KL(target || pred), averaged over (layer, head).
// Layers outside `layers` (empty: all) are left out.
#pragma once
#include <string>
#include <vector>

#include "kvsieve/judgeq.h"
#include "train/soft_pass.h"

namespace kvsieve {


// Returns the loss; grad (same shape as pred) receives d loss / d pred.
double judge_loss(JudgeLoss kind, const AttentionMaps& pred, const AttentionMaps& target,
                  const std::vector<int64_t>& layers, AttentionMaps* grad);

}  // namespace kvsieve
