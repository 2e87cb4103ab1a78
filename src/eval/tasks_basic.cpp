// The standard Needle-in-a-Haystack test, passkey retrieval, and fidelity to
// the full cache.
#include <random>

#include "core/error.h"
#include "eval/tasks.h"

namespace kvsieve::eval {
namespace {

// Needle and question of the standard test (gkamradt/LLMTest_NeedleInAHaystack).
const char* const kNeedle =
    "\nThe best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a "
    "sunny day.\n";
const char* const kNiahHead =
    "You are a helpful AI bot that answers questions for a user. Keep your response short and "
    "direct.\n\n";
const char* const kNiahAnswerPrefix = "Answer: The best thing to do in San Francisco is";
const char* const kNiahQuestion =
    "\n\nQuestion: What is the best thing to do in San Francisco?\nAnswer: The best thing to do "
    "in San Francisco is";

double depth_for(const TaskContext& c, int64_t index, int64_t n) {
  if (!c.opt.depths.empty()) return c.opt.depths[size_t(index) % c.opt.depths.size()];
  return n <= 1 ? 50.0 : 100.0 * double(index) / double(n - 1);
}

// Fills `head + filler + tail` to the target length with filler text,
// keeping room for `needle`; returns the fitted filler.
std::string fit_filler(const TaskContext& c, const std::string& fixed_text, size_t offset) {
  const int64_t fixed = c.count(fixed_text) + 1;  // +1: BOS
  const int64_t budget = c.length - fixed;
  check(budget > 16, "a length of {} tokens is too short for this task (the fixed text alone takes {})",
        c.length, fixed);
  const std::string_view src = std::string_view(c.haystack).substr(offset % (c.haystack.size() / 2));
  return fit_prefix(src, budget, c.count);
}

Sample niah(const TaskContext& c, int64_t index, int64_t n, uint64_t seed) {
  Sample s;
  s.seed = seed;
  s.depth = depth_for(c, index, n);
  // Essay haystacks start at the beginning (as the standard test); the
  // built-in filler is the same everywhere.
  std::string hay = fit_filler(c, std::string(kNiahHead) + kNeedle + kNiahQuestion, 0);
  const size_t at = sentence_break_before(hay, s.depth);
  hay.insert(at, kNeedle);
  s.context = std::string(kNiahHead) + hay;
  s.question = kNiahQuestion;
  s.answer_prefix = kNiahAnswerPrefix;
  s.answers = {"sandwich", "Dolores Park"};
  s.metric = "string_match_all";
  s.max_new_tokens = 32;
  return s;
}

Sample passkey(const TaskContext& c, int64_t index, int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::string key = std::to_string(std::uniform_int_distribution<int>(1, 50000)(rng));
  const std::string head =
      "There is an important info hidden inside a lot of irrelevant text. Find it and memorize "
      "them. I will quiz you about the important information there.\n";
  const std::string info = "The pass key is " + key + ". Remember it. " + key + " is the pass key. ";
  const std::string question = "\nWhat is the pass key? The pass key is";
  // Always the noise sentences, as the original test.
  const int64_t fixed = c.count(head + info + question) + 1;
  check(c.length - fixed > 16, "a length of {} tokens is too short for passkey", c.length);
  const std::string noise = repeat_to(kNoiseFiller, size_t(c.length) * 8);
  std::string hay = fit_prefix(noise, c.length - fixed, c.count);
  Sample s;
  s.seed = seed;
  s.depth = depth_for(c, index, n);
  hay.insert(sentence_break_before(hay, s.depth), " " + info);
  s.context = head + hay;
  s.question = question;
  s.answer_prefix = "The pass key is";
  s.answers = {key};
  s.metric = "string_match_all";
  s.max_new_tokens = 8;
  return s;
}

Sample fidelity(const TaskContext& c, int64_t index, int64_t n, uint64_t seed) {
  // A window of the haystack text: the context, then 64 tokens of continuation.
  std::mt19937_64 rng(seed);
  const size_t start = std::uniform_int_distribution<size_t>(0, c.haystack.size() / 2)(rng);
  size_t b = start;
  while (b < c.haystack.size() && c.haystack[b] != ' ' && c.haystack[b] != '\n') ++b;
  const std::string_view rest = std::string_view(c.haystack).substr(b + 1);
  Sample s;
  s.seed = seed;
  s.context = fit_prefix(rest, c.length - 1, c.count);
  s.continuation = fit_prefix(rest.substr(s.context.size()), 64, c.count);
  s.metric = "fidelity";
  s.max_new_tokens = 0;
  return s;
}

}  // namespace

void add_basic_tasks(std::vector<TaskInfo>& out) {
  out.push_back({"niah", "Needle in a Haystack (the standard test's needle and question)", niah});
  out.push_back({"passkey", "passkey retrieval in noise sentences", passkey});
  out.push_back({"fidelity",
                 "next-token KL, top-1 agreement and perplexity of a continuation vs the full cache",
                 fidelity});
}

}  // namespace kvsieve::eval
