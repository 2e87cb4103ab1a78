// Answer metrics of the benchmarks kvsieve reports, each as its official
// script defines it (the quirks included, so scores compare with published
// ones):
//   LongBench (THUDM/LongBench metrics.py): qa_f1, rouge_l (the `rouge`
//     package's summary-level ROUGE-L F, as LongBench calls it),
//     classification, retrieval, count, code_sim (fuzzywuzzy's ratio without
//     python-Levenshtein, i.e. difflib's SequenceMatcher);
//   RULER (scripts/eval/synthetic/constants.py): string_match_all,
//     string_match_part.
// Text is UTF-8. Python's str.lower() is approximated by the C library's
// towlower in a UTF-8 locale (simple case mapping); whitespace is Python's
// str.isspace set.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace kvsieve::eval {

// SQuAD-style normalisation: lower case, ASCII punctuation removed, the
// words a/an/the removed, whitespace collapsed to single spaces.
std::string normalize_answer(std::string_view s);

// Token F1 between normalised prediction and answer (0 when nothing is shared).
double qa_f1(std::string_view pred, std::string_view truth);

// ROUGE-L F (summary level; sentences split at '.', words at ' ', distinct
// words counted), 0 for an empty prediction or answer.
double rouge_l(std::string_view pred, std::string_view truth);

// The first line of the prediction with no '`', '#' or "//", compared with
// the answer by fuzz.ratio / 100.
double code_sim(std::string_view pred, std::string_view truth);

// fuzzywuzzy's fuzz.ratio: round(100 * difflib ratio), 100 for equal
// strings, 0 when one is empty.
int fuzz_ratio(std::string_view a, std::string_view b);
// difflib.SequenceMatcher(None, a, b).ratio() over code points (autojunk on).
double difflib_ratio(std::string_view a, std::string_view b);

// LongBench classification_score (trec, lsht): 1/k when the answer is among
// the k class names found in the prediction.
double classification(std::string_view pred, std::string_view truth,
                      const std::vector<std::string>& all_classes);
// passage_retrieval_en: share of the numbers in the prediction equal to N of "Paragraph N".
double retrieval(std::string_view pred, std::string_view truth);
// passage_count: share of the numbers in the prediction equal to the answer.
double count(std::string_view pred, std::string_view truth);

// RULER: the share of the references found in the prediction (case-insensitive
// substring), and whether any is found (1 or 0).
double string_match_all(std::string_view pred, const std::vector<std::string>& refs);
double string_match_part(std::string_view pred, const std::vector<std::string>& refs);

// LongBench's score for a dataset: its metric, the best over the answers;
// trec, triviaqa, samsum and lsht look at the first line of the prediction only.
// Throws Error for a dataset it does not know.
double longbench_score(const std::string& dataset, std::string_view pred,
                       const std::vector<std::string>& answers,
                       const std::vector<std::string>& all_classes = {});

}  // namespace kvsieve::eval
