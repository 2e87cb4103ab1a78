// A Session: one conversation on an Engine (engine.h): its KV cache, the
// position reached, and the eviction policy that cuts the cache after the
// prompt. Usage:
//   session->prefill(prompt);              // the context (recorded for the policy)
//   session->compress();                   // cut to the budget (nothing if "full")
//   session->prefill(question);            // read after the cut (query-agnostic)
//   session->generate({.max_tokens = 64}, on_token);
// or all of it in one call: session->generate(prompt, question, options, on_token).
// One thread at a time may use a session (see engine.h).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kvsieve/policy.h"

namespace kvsieve {

class Engine;

struct SessionOptions {
  int threads = 0;              // CPU threads (0: the engine's setting)
  std::string kv_type = "f32";  // element type of the KV cache: f32, f16, bf16
  int64_t batch = 256;          // prefill chunk, tokens
  EvictionConfig eviction;      // how compress() cuts; "full" keeps everything
};

struct GenerateOptions {
  int64_t max_tokens = 128;
  float temperature = 0.0f;  // 0: greedy (the lowest id among equal maxima)
  int32_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // 1: off
  uint64_t seed = 0;
  bool stop_at_eog = true;   // stop before an end-of-generation token
};

// What a cut did.
struct CutReport {
  std::string method;          // canonical spec
  std::string granularity;     // "kv-head" or "query-head"
  std::string budget;          // "128 tokens per head", "ratio 0.5 removed"
  int64_t rows_before = 0;     // rows of the largest head before the cut
  double mean_kept = 0;        // rows kept per (layer, head), on average
  size_t kv_bytes_before = 0, kv_bytes_after = 0;
  size_t peak_kv_bytes = 0;    // most K/V bytes held at once, temporary caches included
  double seconds = 0;          // scoring, selection and compaction
  double probe_seconds = 0;    // LAQ's lookahead / Judge Q's soft tokens
  // The positions each (layer, head) kept, as `kvsieve run --dump-kept`
  // writes them (JSON).
  std::string kept_json;
};

struct GenerateStats {
  int64_t n_prompt = 0, n_question = 0, n_generated = 0;
  int64_t n_decode_steps = 0;  // single-token forward passes run
  double prefill_seconds = 0, decode_seconds = 0;
  size_t kv_bytes = 0;         // K/V bytes held at the end
  bool evicted = false;        // the cut after the prompt, when there was one:
  CutReport cut;
  int64_t n_recuts = 0;        // decode-time re-selections
};

// Called with each new token; return false to stop after it.
using TokenCallback = std::function<bool(int32_t)>;

class Session {
 public:
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const SessionOptions& options() const;

  // Runs tokens at positions n_past() ..; returns the last one's logits
  // [n_vocab] (`all`, when given, receives [n, n_vocab]). The forward pass
  // records what the eviction policy needs.
  const std::vector<float>& prefill(const std::vector<int32_t>& ids,
                                    std::vector<float>* all = nullptr);
  // One token at position n_past(); returns its logits.
  const std::vector<float>& decode(int32_t id);
  // The logits of the last prefill or decode.
  const std::vector<float>& logits() const;

  // Cuts the cache with the session's policy (see SessionOptions::eviction).
  // LAQ decodes ahead from the first answer token: pass it (chosen from
  // logits()), or -1 to take the greedy one. Decoding afterwards re-cuts
  // every decode_every tokens when that is set. Without a cut ("full") it
  // does nothing and returns a report of nothing cut.
  CutReport compress(int32_t first_token = -1);
  bool cuts() const;  // whether the policy cuts at all

  // Samples up to max_tokens from logits(), running each, and returns them.
  std::vector<int32_t> generate(const GenerateOptions& g, const TokenCallback& on_token = nullptr,
                                GenerateStats* stats = nullptr);
  // The whole job: prefill `prompt`, cut it with the policy, prefill
  // `question` (may be empty) after the cut, generate. on_cut is called once
  // after the cut.
  std::vector<int32_t> generate(const std::vector<int32_t>& prompt,
                                const std::vector<int32_t>& question, const GenerateOptions& g,
                                const TokenCallback& on_token = nullptr,
                                GenerateStats* stats = nullptr,
                                const std::function<void(const CutReport&)>& on_cut = nullptr);

  // ---- One token at a time, for a caller that interleaves many sessions
  // (a server that batches their decode steps with decode_batch()).
  // start() does what generate(prompt, question, ...) does before its first
  // token: prefill, cut, question (stats receives the prefill and cut
  // figures). next_token() then picks each token as generate() would (the
  // same sampler and seed, LAQ's first token), or returns -1 when the
  // generation is over: an end-of-generation token (with stop_at_eog) or
  // max_tokens given. The caller runs each token it got with decode() or
  // decode_batch() before asking for the next, except when done() says that
  // it was the last.
  void start(const std::vector<int32_t>& prompt, const std::vector<int32_t>& question,
             const GenerateOptions& g, GenerateStats* stats = nullptr,
             const std::function<void(const CutReport&)>& on_cut = nullptr);
  int32_t next_token();
  bool done() const;  // max_tokens given, or an end of generation seen

  // Runs one token in each session (ids[i] in sessions[i]) in one forward
  // pass: the weight products on all rows at once, each session's attention
  // over its own cache. Afterwards each session's logits() holds its own
  // logits and its policy has re-cut where decode() would. The sessions must
  // be distinct, made by one engine, and not in use by another thread. The
  // logits equal decode()'s on each session up to the rounding of the
  // batched products.
  static void decode_batch(const std::vector<Session*>& sessions, const std::vector<int32_t>& ids);

  int32_t n_past() const;
  size_t kv_bytes() const;       // K/V bytes held now
  size_t kv_bytes_full() const;  // what the same positions would take uncut
  // The most memory of its device this session held at once (K/V, scratch,
  // activations; the model's weights, shared by all sessions, not counted).
  size_t peak_device_bytes() const;
  // Forget everything (the cache is emptied; the policy stays).
  void reset();

  struct Impl;

 private:
  friend class Engine;
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvsieve
