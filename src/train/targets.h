// Judge Q targets: the attention the model's own answer pays to the prompt.
// For a prompt, the model generates its greedy response (up to R tokens,
// stopping at end of generation) with the full cache; the response is then
// teacher-forced and, per layer and query head, its tokens' attention
// probabilities on the prompt positions are averaged over the response.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/model.h"
#include "train/soft_pass.h"

namespace kvsieve {

struct JudgeTarget {
  std::vector<int32_t> response;  // the greedy response (may be empty: then no target)
  AttentionMaps maps;             // [L, H, n_scored]
};

// prompt: all prompt tokens (context and question). n_scored: the prompt
// positions the maps cover (the context for query-agnostic training, else
// prompt.size()).
JudgeTarget compute_target(const Model& m, Backend& be, const std::vector<int32_t>& prompt,
                           int64_t n_scored, int64_t max_response);

// Targets kept on disk between epochs and runs: one file per prompt, named by
// a hash of the model fingerprint, the prompt ids and the settings.
std::string target_cache_key(const std::string& model_fingerprint, const std::vector<int32_t>& prompt,
                             int64_t n_scored, int64_t max_response);
bool load_target(const std::string& path, JudgeTarget& t);
void save_target(const std::string& path, const JudgeTarget& t);

}  // namespace kvsieve
