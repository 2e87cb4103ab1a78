#include "io/qk_permute.h"

#include <cstring>

#include "core/error.h"

namespace kvsieve {

void permute_qk_rows(const void* src, void* dst, int64_t n_head, int64_t head_dim, size_t row_bytes,
                     QkDirection dir) {
  check(head_dim > 0 && head_dim % 2 == 0, "q/k permutation: head dim {} must be even", head_dim);
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t j = 0; j < 2; ++j) {
        const int64_t inter = h * head_dim + 2 * i + j;  // row in the interleaved layout
        const int64_t neox = h * head_dim + j * half + i;  // the same row in the neox layout
        const int64_t from = dir == QkDirection::kNeoxToInterleaved ? neox : inter;
        const int64_t to = dir == QkDirection::kNeoxToInterleaved ? inter : neox;
        std::memcpy(d + size_t(to) * row_bytes, s + size_t(from) * row_bytes, row_bytes);
      }
}

}  // namespace kvsieve
