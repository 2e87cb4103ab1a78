// Metrics against values worked out by hand from the official definitions
// (LongBench metrics.py with the `rouge` and fuzzywuzzy/difflib packages it
// uses; RULER's string_match_all / string_match_part).
#include <gtest/gtest.h>

#include "core/error.h"
#include "eval/metrics.h"

namespace kvsieve::eval {
namespace {

TEST(EvalMetrics, NormalizeAnswer) {
  EXPECT_EQ(normalize_answer("The Cat, an apple & a dog!"), "cat apple dog");
  EXPECT_EQ(normalize_answer("  Theory\tanda  THE\n"), "theory anda");  // words, not prefixes
  EXPECT_EQ(normalize_answer("an-apple"), "anapple");  // punctuation goes first
  EXPECT_EQ(normalize_answer(""), "");
}

TEST(EvalMetrics, QaF1) {
  // pred [paris is capital], truth [capital is paris france]: 3 shared, P 1, R 3/4.
  EXPECT_NEAR(qa_f1("Paris is the capital", "the capital is Paris, France"), 6.0 / 7.0, 1e-12);
  EXPECT_EQ(qa_f1("London", "Paris"), 0.0);
  EXPECT_EQ(qa_f1("a the an", "the"), 0.0);  // both normalise to nothing
  // Repeated words count as often as both sides have them.
  EXPECT_NEAR(qa_f1("cat cat dog", "cat dog dog"), 2.0 / 3.0, 1e-12);
}

TEST(EvalMetrics, RougeL) {
  // One sentence each: distinct words m = n = 5, union LCS {the, cat, on, mat} = 4.
  EXPECT_NEAR(rouge_l("the cat sat on the mat", "the cat is on the mat"), 0.8, 1e-7);
  // Two sentences each (split at '.'): m = 5, n = 4; ref "a b c" gets {a, c},
  // ref "d e" adds {e, d}: LCS_u = 4, R = 0.8, P = 1.
  EXPECT_NEAR(rouge_l("a c e. d", "a b c. d e"), 2 * 0.8 / 1.8, 1e-7);
  EXPECT_EQ(rouge_l("", "the cat"), 0.0);
  EXPECT_EQ(rouge_l("...", "the cat"), 0.0);  // no sentence left
  EXPECT_EQ(rouge_l("dog", "the cat"), 0.0);
}

TEST(EvalMetrics, FuzzRatioIsDifflibs) {
  EXPECT_EQ(fuzz_ratio("abcd", "bcde"), 75);    // block "bcd": 2*3/8
  EXPECT_EQ(fuzz_ratio("kitten", "sitting"), 62);  // "itt" + "n": 2*4/13
  EXPECT_EQ(fuzz_ratio("same", "same"), 100);
  EXPECT_EQ(fuzz_ratio("", "x"), 0);
  EXPECT_EQ(fuzz_ratio("", ""), 100);
  // difflib's autojunk: in a b of 200+ elements, one in more than 1% of it is
  // "popular" and cannot start a match, only extend one.
  const std::string a300(300, 'a'), ba(std::string("b") + std::string(299, 'a'));
  EXPECT_DOUBLE_EQ(difflib_ratio(a300, a300), 1.0);
  EXPECT_DOUBLE_EQ(difflib_ratio(a300, ba), 0.0);
  EXPECT_DOUBLE_EQ(difflib_ratio("héllo", "hello"), 0.8);  // code points, not bytes
}

TEST(EvalMetrics, CodeSim) {
  EXPECT_DOUBLE_EQ(code_sim("\n```python\n# a comment\nx = foo(1)\ny = 2", "x = foo(2)"), 0.9);
  EXPECT_DOUBLE_EQ(code_sim("// only comments\n# here", "x = 1"), 0.0);
}

TEST(EvalMetrics, ClassificationKeepsLongBenchsQuirk) {
  EXPECT_DOUBLE_EQ(classification("Type: DESC and ABBR", "DESC", {"ABBR", "DESC", "ENTY"}), 0.5);
  EXPECT_DOUBLE_EQ(classification("ENTY", "DESC", {"ABBR", "DESC", "ENTY"}), 0.0);
  // Found [a1, a12, a123]; removing "a1" while iterating skips "a12", which stays.
  EXPECT_DOUBLE_EQ(classification("a123", "a123", {"a1", "a12", "a123"}), 0.5);
}

TEST(EvalMetrics, RetrievalAndCount) {
  EXPECT_DOUBLE_EQ(retrieval("Paragraph 3, not 13", "Paragraph 3"), 0.5);
  EXPECT_DOUBLE_EQ(retrieval("none", "Paragraph 3"), 0.0);
  EXPECT_THROW(retrieval("3", "no paragraph here"), Error);
  EXPECT_DOUBLE_EQ(count("There are 5 unique paragraphs, 5", "5"), 1.0);
  EXPECT_DOUBLE_EQ(count("3 or 4", "4"), 0.5);
}

TEST(EvalMetrics, RulerStringMatch) {
  const std::vector<std::string> refs = {"123", "456", "789"};
  EXPECT_NEAR(string_match_all("The values are 123 and 456", refs), 2.0 / 3.0, 1e-12);
  EXPECT_EQ(string_match_part("The values are 123 and 456", refs), 1.0);
  EXPECT_EQ(string_match_part("nothing", refs), 0.0);
  EXPECT_EQ(string_match_all("BRAVE-LION", {"brave-lion"}), 1.0);  // case-insensitive
}

TEST(EvalMetrics, LongBenchScore) {
  EXPECT_DOUBLE_EQ(longbench_score("triviaqa", "\nParis\nLondon", {"London", "paris"}), 1.0);
  // Whole prediction [paris london] vs [london]: P 1/2, R 1.
  EXPECT_NEAR(longbench_score("hotpotqa", "\nParis\nLondon", {"London"}), 2.0 / 3.0, 1e-12);
  EXPECT_THROW(longbench_score("dureader", "x", {"y"}), Error);
}

}  // namespace
}  // namespace kvsieve::eval
