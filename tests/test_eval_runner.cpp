// kvsieve eval: deterministic generators, needles at the requested depth and
// prompts at the requested length, and an end-to-end sweep on stories260K
// (every method, two budgets) with its report, then a resume that does no work.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/soft_tokens.h"
#include "eval/report.h"
#include "eval/runner.h"
#include "eval/tasks.h"
#include "kv_test_util.h"
#include "test_util.h"
#include "tokenizer/vocab_loaders.h"

namespace kvsieve::testing {
namespace {

const Tokenizer& spm() {
  static auto tok = Tokenizer::create(
      vocab_from_sentencepiece(shared_data() + "/tokenizers/llama-spm/tokenizer.model"));
  return *tok;
}

TEST(EvalTasks, DeterministicForASeed) {
  KVSIEVE_REQUIRE_SHARED("tokenizers/llama-spm/tokenizer.model");
  TaskOptions opt;
  for (const std::string task : {"niah", "passkey", "fidelity"}) {
    const auto a = eval::make_samples(task, spm(), 512, 3, 7, opt);
    const auto b = eval::make_samples(task, spm(), 512, 3, 7, opt);
    ASSERT_EQ(a.size(), 3u);
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].context, b[i].context) << task;
      EXPECT_EQ(a[i].question, b[i].question) << task;
      EXPECT_EQ(a[i].answers, b[i].answers) << task;
      EXPECT_EQ(a[i].seed, b[i].seed) << task;
    }
  }
  // Another run seed draws other passkeys; sample seeds never repeat.
  const auto p7 = eval::make_samples("passkey", spm(), 512, 4, 7, opt);
  const auto p8 = eval::make_samples("passkey", spm(), 512, 4, 8, opt);
  int same = 0;
  for (size_t i = 0; i < p7.size(); ++i) same += p7[i].answers == p8[i].answers;
  EXPECT_LT(same, 2);
  EXPECT_NE(eval::sample_seed(7, "passkey", 512, 0), eval::sample_seed(7, "passkey", 512, 1));
  EXPECT_NE(eval::sample_seed(7, "passkey", 512, 0), eval::sample_seed(7, "niah", 512, 0));
}

TEST(EvalTasks, NeedleAtTheDepthAndPromptAtTheLength) {
  KVSIEVE_REQUIRE_SHARED("tokenizers/llama-spm/tokenizer.model");
  KVSIEVE_REQUIRE_SHARED("haystack/paulgraham/addiction.txt");
  TaskOptions opt;
  opt.haystack = shared_data() + "/haystack/paulgraham";
  opt.depths = {0, 10, 25, 50, 75, 90, 100};
  for (int64_t length : {1000, 2000, 4000}) {
    for (const std::string task : {"niah", "passkey"}) {
      const auto samples = eval::make_samples(task, spm(), length, 7, 0, opt);
      for (const auto& s : samples) {
        const int64_t n = int64_t(spm().encode(s.context + s.question, true).size());
        EXPECT_LE(n, length) << task << " " << length;
        EXPECT_GE(n, length - 12) << task << " " << length;  // within a few tokens of the target
        // Take the needle out again: it must have gone in at the last sentence
        // end before depth% of the filler.
        const std::string head = task == "niah" ? "direct.\n\n" : "there.\n";
        const std::string needle =
            task == "niah"
                ? "\nThe best thing to do in San Francisco is eat a sandwich and sit in Dolores Park "
                  "on a sunny day.\n"
                : " The pass key is " + s.answers[0] + ". Remember it. " + s.answers[0] +
                      " is the pass key. ";
        std::string hay = s.context.substr(s.context.find(head) + head.size());
        const size_t at = hay.find(needle);
        ASSERT_NE(at, std::string::npos) << task;
        // Exactly one needle: the haystack folder's own notes (which quote it) are not filler.
        EXPECT_EQ(hay.find(needle, at + 1), std::string::npos) << task;
        hay.erase(at, needle.size());
        const size_t target = size_t(double(hay.size()) * s.depth / 100.0);
        EXPECT_LE(at, target) << task << " depth " << s.depth;
        const std::string between = hay.substr(at, target - at);
        for (const char* end : {". ", ".\n", "! ", "? "})
          EXPECT_EQ(between.find(end), std::string::npos)
              << task << " depth " << s.depth << ": a sentence ends between needle and depth";
      }
    }
  }
}

TEST(EvalRunner, EveryMethodEndToEndOnStories260KAndResume) {
  KVSIEVE_REQUIRE_SHARED("stories260K/stories260K.bin");
  const Model& m = kv_test_model("stories260K");
  TempDir d;
  const std::string soft = d.file("soft.gguf");
  write_soft_tokens(soft, soft_tokens_from_ids(m, m.tokenizer()->encode(" What happened?", false),
                                               "init: What happened?"));
  EvalConfig c;
  c.tasks = {"niah", "passkey", "fidelity"};
  c.lengths = {300};
  c.samples = 2;
  c.methods = {"streamingllm", "h2o",   "snapkv", "pyramidkv", "adakv", "tova", "knorm",
               "random",       "laq",   "laq++",  "judgeq:soft=" + soft};
  c.budgets = {40, 96};
  c.out_path = d.file("results.jsonl");
  c.progress = false;
  CpuBackend be(2);
  const EvalTotals t = eval::run_eval(m, be, c);
  const int64_t per_prompt = 1 + int64_t(c.methods.size() * c.budgets.size());
  EXPECT_EQ(t.prompts_run, 6);
  EXPECT_EQ(t.rows_written, 6 * per_prompt);
  EXPECT_EQ(t.errors, 0);
  // Every row carries a score; rows of one prompt share its one prefill.
  std::ifstream in(c.out_path);
  std::string line;
  std::map<std::string, double> prefill;
  int64_t rows = 0;
  double h2o96_mib = 0;  // summed over its prompts, for the report's KV MiB column
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    ++rows;
    if (j["method"] == "h2o" && j["budget"] == 96) h2o96_mib += j["kv_bytes"].get<double>() / (1024.0 * 1024.0);
    EXPECT_TRUE(j.contains("score")) << line.substr(0, 200);
    const std::string prompt = j["task"].get<std::string>() + j["id"].get<std::string>();
    if (prefill.count(prompt)) {
      EXPECT_EQ(prefill[prompt], j["prefill_s"].get<double>());
    }
    prefill[prompt] = j["prefill_s"].get<double>();
    if (j["method"] != "full" && j["budget"] == 40) {
      EXPECT_LT(j["kv_bytes"].get<double>(), j["kv_bytes_full"].get<double>());
    }
  }
  EXPECT_EQ(rows, 6 * per_prompt);
  const eval::Report r = eval::make_report(c.out_path, d.file("svg"));
  for (const auto& meth : {"full", "streamingllm", "h2o", "snapkv", "laq++", "judgeq"})
    EXPECT_NE(r.markdown.find(std::string("| ") + meth), std::string::npos) << meth;
  EXPECT_NE(r.markdown.find("| niah | passkey | fidelity | overall | KV kept | KV MiB |"), std::string::npos);
  // The h2o row at 96 ends with the mean of its prompts' kept bytes, in MiB.
  const size_t h2o_row = r.markdown.find("| h2o | 96 |");
  ASSERT_NE(h2o_row, std::string::npos) << r.markdown;
  const std::string row = r.markdown.substr(h2o_row, r.markdown.find('\n', h2o_row) - h2o_row);
  EXPECT_NE(row.find(fmt::format("% | {:.2f} |", h2o96_mib / 6)), std::string::npos) << row;
  EXPECT_FALSE(r.svg_files.empty());
  for (const auto& f : r.svg_files) {
    EXPECT_TRUE(std::filesystem::exists(f));
    EXPECT_EQ(read_file(f).rfind("<svg", 0), 0u) << f;
  }
  EXPECT_TRUE(std::filesystem::exists(d.file("svg/score_vs_budget_overall.svg")));
  // A finished run resumes with nothing to do.
  const EvalTotals again = eval::run_eval(m, be, c);
  EXPECT_EQ(again.prompts_run, 0);
  EXPECT_EQ(again.prompts_skipped, 6);
  EXPECT_EQ(again.rows_written, 0);
  // A run cut short (its last line half written) redoes only that prompt.
  std::string all = read_file(c.out_path);
  all.resize(all.size() - 20);
  write_file(c.out_path, all);
  const EvalTotals part = eval::run_eval(m, be, c);
  EXPECT_EQ(part.prompts_run, 1);
  EXPECT_EQ(part.rows_written, 1);
  // The cut line was removed, not appended to: every line parses and the
  // report reads the file.
  std::istringstream lines(read_file(c.out_path));
  int64_t n_lines = 0;
  while (std::getline(lines, line)) {
    EXPECT_TRUE(nlohmann::json::accept(line)) << line.substr(0, 120);
    ++n_lines;
  }
  EXPECT_EQ(n_lines, 6 * per_prompt);
  EXPECT_NO_THROW((void)eval::make_report(c.out_path, d.file("svg2")));
}

TEST(EvalRunner, BadConfigurationsFailBeforeRunning) {
  KVSIEVE_REQUIRE_SHARED("stories260K/stories260K.bin");
  const Model& m = kv_test_model("stories260K");
  EvalConfig c;
  c.tasks = {"niah"};
  c.lengths = {300};
  c.methods = {"snapkv"};
  EXPECT_THROW(eval::validate(c, m), Error);  // no budgets
  c.budgets = {16};
  EXPECT_THROW(eval::validate(c, m), Error);  // window 32 > budget 16
  c.budgets = {64};
  EXPECT_NO_THROW(eval::validate(c, m));
  c.tasks = {"nosuchtask"};
  EXPECT_THROW(eval::validate(c, m), Error);
  c.tasks = {"niah"};
  c.seed = 2000000;
  EXPECT_THROW(eval::validate(c, m), Error);  // training seeds
}

}  // namespace
}  // namespace kvsieve::testing

namespace kvsieve::testing {
namespace {

TEST(EvalRuler, EveryTaskFitsItsLengthAndHoldsItsAnswers) {
  KVSIEVE_REQUIRE_SHARED("tokenizers/llama-spm/tokenizer.model");
  KVSIEVE_REQUIRE_SHARED("haystack/paulgraham/addiction.txt");
  TaskOptions opt;
  opt.haystack = shared_data() + "/haystack/paulgraham";
  const std::vector<std::string> names = {
      "niah_single_1",   "niah_single_2", "niah_single_3", "niah_multikey_1",
      "niah_multikey_2", "niah_multikey_3", "niah_multivalue", "niah_multiquery",
      "vt",              "cwe",           "fwe"};
  for (const auto& name : names) {
    const auto a = eval::make_samples(name, spm(), 2048, 2, 5, opt);
    const auto b = eval::make_samples(name, spm(), 2048, 2, 5, opt);
    ASSERT_EQ(a.size(), 2u);
    EXPECT_EQ(a[0].seed, 5u) << "RULER sample seeds are run seed + index";
    EXPECT_EQ(a[1].seed, 6u);
    EXPECT_NE(a[0].context, a[1].context) << name;
    for (size_t i = 0; i < a.size(); ++i) {
      const auto& s = a[i];
      EXPECT_EQ(s.context, b[i].context) << name << ": not deterministic";
      EXPECT_EQ(s.answers, b[i].answers) << name;
      const int64_t n = int64_t(spm().encode(s.context + s.question, false).size());
      EXPECT_LE(n + s.max_new_tokens, 2048) << name;
      EXPECT_GE(n + s.max_new_tokens, 2048 - 160) << name << ": far below the target length";
      ASSERT_FALSE(s.answers.empty()) << name;
      for (const auto& ans : s.answers)
        EXPECT_NE(s.context.find(ans), std::string::npos) << name << ": answer " << ans << " not in context";
      EXPECT_EQ(s.metric, "string_match_all");
      EXPECT_NE(s.question.back(), ' ') << name << ": trailing space left";
    }
  }
}

TEST(EvalRuler, EssayTasksNeedTheEssays) {
  KVSIEVE_REQUIRE_SHARED("tokenizers/llama-spm/tokenizer.model");
  EXPECT_THROW(eval::make_samples("niah_single_2", spm(), 2048, 1, 0, TaskOptions{}), Error);
  EXPECT_NO_THROW(eval::make_samples("niah_single_1", spm(), 2048, 1, 0, TaskOptions{}));
}

}  // namespace
}  // namespace kvsieve::testing

namespace kvsieve::testing {
namespace {

TEST(EvalLongBench, OfficialTemplateAndMiddleTruncation) {
  KVSIEVE_REQUIRE_SHARED("tokenizers/llama-spm/tokenizer.model");
  TempDir d;
  std::string ctx;
  for (int i = 0; i < 200; ++i) ctx += "Passage " + std::to_string(i) + " talks about rivers and hills. ";
  nlohmann::json a = {{"input", "Which river is longest?"}, {"context", ctx},
                      {"answers", {"the Nile"}},              {"all_classes", nullptr},
                      {"_id", "abc"},                        {"length", 1000}};
  nlohmann::json b = a;
  b["_id"] = "def";
  b["context"] = "Short context.";
  write_file(d.file("hotpotqa.jsonl"), a.dump() + "\n" + b.dump() + "\n");
  TaskOptions opt;
  opt.longbench_dir = d.path();
  const auto s = eval::make_samples("hotpotqa", spm(), 256, 2, 0, opt);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].id, "abc");
  EXPECT_EQ(s[0].answers, std::vector<std::string>{"the Nile"});
  EXPECT_EQ(s[0].max_new_tokens, 32);  // dataset2maxlen for hotpotqa
  // Not cut: the official template around the fields, the question after the context.
  EXPECT_EQ(s[1].context.rfind("Answer the question based on the given passages.", 0), 0u);
  EXPECT_NE(s[1].context.find("Short context."), std::string::npos);
  EXPECT_NE(s[1].question.find("Question: Which river is longest?"), std::string::npos);
  // Cut: the first and last 128 tokens kept, so the question survives at the end.
  const int64_t n = int64_t(spm().encode(s[0].context + s[0].question, false).size());
  EXPECT_NEAR(double(n), 256.0, 4.0);
  EXPECT_NE(s[0].context.find("Passage 0 "), std::string::npos);
  EXPECT_EQ(s[0].context.find("Passage 100 "), std::string::npos);  // the middle is gone
  EXPECT_NE(s[0].question.find("Which river is longest?"), std::string::npos);
  EXPECT_THROW(eval::make_samples("hotpotqa", spm(), 256, 3, 0, opt), Error);  // only 2 lines
  EXPECT_THROW(eval::make_samples("qasper", spm(), 256, 1, 0, opt), Error);    // no file
}

}  // namespace
}  // namespace kvsieve::testing
