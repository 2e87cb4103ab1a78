// `kvsieve train-judgeq`: learns Judge Q soft tokens for a frozen model.
// Each step takes one training prompt, runs the m soft tokens after it
// (SoftPass, the prompt's K/V held fixed and cached across steps), compares
// their attention over the prompt with the target (train/targets.h), and
// updates only the soft embeddings with AdamW (warmup, cosine decay, global
// gradient-norm clipping). Deterministic for a seed and a thread count;
// checkpoints (soft tokens + optimizer state) allow resuming.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/model.h"
#include "kvsieve/judgeq.h"
#include "train/loss.h"

namespace kvsieve {

TrainResult train_judgeq(const Model& m, Backend& be, const TrainConfig& cfg);

}  // namespace kvsieve
