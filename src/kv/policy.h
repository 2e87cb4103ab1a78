// A KV eviction policy: a scorer plus the shared settings that turn its
// scores into keep sets. Built from a method spec string through the method
// registry; `kvsieve run --kv help` prints the registry.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kv/method_spec.h"
#include "kv/scorer.h"
#include "kvsieve/policy.h"
#include "backend/backend.h"
#include "core/select.h"

namespace kvsieve {

enum class Allocation {
  kUniform,  // every head the same budget
  kPyramid,  // PyramidKV: more tokens in lower layers, same total
  kAdaKV,    // Ada-KV: one budget per layer, split across its heads by score
};

struct Policy {
  std::string method;  // registry name
  std::string spec;    // canonical spec, every parameter with its value
  std::unique_ptr<Scorer> scorer;  // null: keep everything ("full")
  Protect protect;                 // sinks and recent window, per head
  int64_t kernel = 1;              // pooling along the sequence
  PoolKind pool = PoolKind::kNone;
  Reduce gqa = Reduce::kMean;      // query group -> KV head
  bool gqa_first = false;          // reduce the group before pooling (else after, as kvpress)
  Allocation alloc = Allocation::kUniform;
  double beta = 20;                // PyramidKV
  double floor = 0.2;              // Ada-KV safeguard share of a head's budget
  std::string ada_variant = "kvpress";  // "kvpress" or "kvcache-factory"
  // Probes from a source that runs the model (the engine provides it):
  //   "lookahead":   LAQ, `lookahead` greedy steps on a copy of the cache cut
  //                  by `stage1_spec` (a method spec) to the same budget;
  //   "soft-tokens": Judge Q, the soft embeddings in `soft_path`.
  std::string probe_source;
  int64_t lookahead = 8;
  std::string stage1_spec;
  std::string soft_path;
  bool soft_check = true;  // soft tokens must carry this model's fingerprint
};

// A method in the registry.
struct MethodInfo {
  std::string name;
  std::string summary;
  // Parameters beyond the shared ones, for help: "name=default  meaning".
  std::vector<std::string> params;
  // Builds the scorer and method-specific settings; shared settings are read
  // by make_policy. May read further keys from p.
  std::function<void(MethodParams& p, Policy& out)> build;
};

const std::vector<MethodInfo>& kv_methods();


// Parses and validates a spec; throws Error for an unknown method, preset or
// parameter, or a value out of range.
Policy make_policy(std::string_view spec, std::string_view preset = "");


}  // namespace kvsieve
