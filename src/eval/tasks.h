// Task generators: seeded, deterministic prompts of a target length in
// tokens for any tokenizer. `kvsieve eval --tasks help` lists them.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "eval/sample.h"
#include "eval/text_fit.h"
#include "kvsieve/eval.h"
#include "tokenizer/tokenizer.h"

namespace kvsieve::eval {

struct TaskContext {
  const Tokenizer& tok;
  TokenCounter count;  // tokens of a text, no BOS
  int64_t length;      // target prompt length in tokens (what a chat template leaves)
  const TaskOptions& opt;
  const std::string& haystack;  // the filler text (loaded once)
  int64_t named_length;         // the length the samples are named and seeded for
};

struct TaskInfo {
  std::string name;
  std::string summary;
  // Sample `index` of `n` for this length; `seed` is the sample's own seed.
  std::function<Sample(const TaskContext& c, int64_t index, int64_t n, uint64_t seed)> make;
};

const std::vector<TaskInfo>& tasks();
const TaskInfo& find_task(const std::string& name);  // throws Error listing the tasks

// The seed of sample `index` of (task, length) for a run seed: a hash, so
// adding tasks, lengths or samples never changes the others.
uint64_t sample_seed(uint64_t run_seed, const std::string& task, int64_t length, int64_t index);

// Samples 0..n-1 of a task at a length.
std::vector<Sample> make_samples(const std::string& task, const Tokenizer& tok, int64_t length,
                                 int64_t n, uint64_t run_seed, const TaskOptions& opt);

// The texts of a haystack file or folder (.txt files in name order, without
// the licence, source and needle notes), each validated as UTF-8.
std::vector<std::string> read_haystack_files(const std::string& path);

// The filler text for essay haystacks (see TaskOptions::haystack).
std::string load_haystack(const std::string& path);

// Built-in filler: RULER's and the passkey test's "noise" sentences.
extern const char* const kNoiseFiller;

}  // namespace kvsieve::eval
