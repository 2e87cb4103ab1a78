// --dump-kept: the keep sets of a cut as JSON, so a run can be cross-checked
// against another implementation.
//   {"method": spec, "preset": "", "granularity": "kv-head", "budget": {"tokens": N} | {"ratio": R},
//    "prompt_tokens": n, "n_layer": L, "n_heads": S,
//    "layers": [{"layer": l, "heads": [{"head": s, "budget": b, "kept": [positions, sorted]}]}]}
#pragma once
#include <string>

#include "kv/evictor.h"

namespace kvsieve {

std::string kept_to_json(const Evictor& ev, const EvictionReport& r);

// Reads the keep sets of such a file back (tests, cross-checks).
KeepSets kept_from_json(const std::string& text);

}  // namespace kvsieve
