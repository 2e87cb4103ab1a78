// Eviction policies: which KV eviction method cuts a session's cache, to what
// budget, at what granularity. A method is a spec string,
// "METHOD[:key=value,...]" (e.g. "snapkv:window=32,kernel=7",
// "laq++", "judgeq:soft=FILE.gguf"); kv_methods_help() lists the methods and
// their parameters.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kvsieve {

// How many rows each head keeps. Two conventions, as the two reference
// libraries have them:
//   tokens: every head keeps N rows, the protected window included
//           (KVCache-Factory, LAQ). A prompt of n <= N rows is not cut.
//   ratio:  the fraction removed; a head of n rows keeps int(n (1 - R))
//           (kvpress).
struct Budget {
  int64_t tokens = 0;  // > 0: tokens per head
  double ratio = 0;    // in (0, 1) when tokens == 0
  bool by_ratio() const { return tokens == 0; }
  std::string describe() const;  // "128 tokens per head", "ratio 0.5 removed"
};

enum class Granularity {
  kKvHead,     // one token set per KV head; scores reduced over its query group
  kQueryHead,  // K/V copied per query head, one set each (LAQ / KVCache-Factory code)
};
Granularity granularity_from_name(const std::string& s);  // "kv-head", "query-head"
const char* granularity_name(Granularity g);
// The granularity a command uses: `name` when given, else the preset's
// library's own (query-head for kvcache-factory, kv-head otherwise), so the
// same flags keep the same sets in `run`, `eval` and `judgeq-overlap`.
Granularity granularity_for(const std::string& name, const std::string& preset);

struct EvictionConfig {
  std::string spec = "full";  // method spec; "full" keeps everything
  std::string preset;         // "", "kvpress", "kvcache-factory": a library's defaults
  Budget budget;
  Granularity granularity = Granularity::kKvHead;
  int64_t decode_every = 0;   // while decoding, cut back every N new tokens; 0 = never
};

// Parses the spec under the preset; throws Error for an unknown method or
// parameter, a value out of range. Returns the canonical spec (every
// parameter with its value).
std::string check_method(const std::string& spec, const std::string& preset = "");
// Whether the spec cuts at all ("full" does not).
bool method_cuts(const std::string& spec, const std::string& preset = "");
// Throws Error when the budget is invalid or cannot hold the method's
// protected tokens (sinks + window).
void check_eviction(const EvictionConfig& cfg);
// The text `kvsieve run --kv help` prints: methods, parameters, presets.
std::string kv_methods_help();
std::vector<std::string> kv_presets();  // "kvpress", "kvcache-factory"

}  // namespace kvsieve
