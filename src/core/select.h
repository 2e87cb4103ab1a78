// Selection: which rows of one head to keep, given their scores.
//
// Tie rule (documented, used by every method and by the test references):
// rows are ranked by score, higher first; among equal scores the row with the
// earlier position ranks first. NaN scores rank last.
#pragma once
#include <cstdint>
#include <vector>

namespace kvsieve {

// Rows of one head that are kept regardless of score: the first `sinks` rows
// and the last `window` rows (overlaps counted once).
struct Protect {
  int64_t sinks = 0;
  int64_t window = 0;
};

// Indices of the `k` best of scores[0..n) in rank order (see tie rule).
// k is clamped to n.
std::vector<int64_t> top_k(const float* scores, int64_t n, int64_t k);

// Row indices (increasing) of one head of n rows keeping `budget` rows: the
// protected rows plus the best-scored others. scores [n]; scores of protected
// rows are ignored. Throws Error if budget < the protected count (while n > budget).
// budget >= n keeps every row.
std::vector<int64_t> select_rows(const float* scores, int64_t n, int64_t budget, Protect p);

// The number of rows `p` protects in a head of n rows.
int64_t protected_count(int64_t n, Protect p);

}  // namespace kvsieve
