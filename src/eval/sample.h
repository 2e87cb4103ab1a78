// One evaluation prompt: what is compressed (context), what comes after
// (question, with any answer prefix), the references and how to score.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kvsieve::eval {

struct Sample {
  std::string task;      // e.g. "niah", "passkey", "niah_single_1", "hotpotqa", "fidelity"
  std::string id;        // unique within a task: "<length>-<index>" or the dataset's id
  int64_t index = 0;     // sample number within (task, length)
  uint64_t seed = 0;     // the generator's seed for this sample
  int64_t length = 0;    // target prompt length in tokens (0: as the data is)
  double depth = -1;     // needle depth in percent, when the task has one

  std::string context;   // compressed in both modes
  std::string question;  // after the context; query-agnostic runs read it after the cut
  // The end of `question` that starts the answer ("The pass key is"): with a
  // chat template it goes after the assistant's header, as RULER does.
  std::string answer_prefix;
  std::vector<std::string> answers;
  std::vector<std::string> all_classes;  // LongBench classification tasks
  // "string_match_all", "string_match_part", a LongBench dataset name (its
  // metric), or "fidelity" (no generation: the continuation is scored).
  std::string metric;
  int64_t max_new_tokens = 32;
  std::string continuation;  // fidelity: the text whose next-token distributions are compared
};

}  // namespace kvsieve::eval
