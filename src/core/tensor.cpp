#include "core/tensor.h"

#include "core/error.h"

namespace kvsieve {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

size_t checked_tensor_bytes(const std::string& what, DType t, const std::vector<int64_t>& shape) {
  check(!shape.empty() && shape.size() <= 4, "{}: {} dimensions (expected 1 to 4)", what,
        shape.size());
  int64_t n = 1;
  for (int64_t d : shape) {
    check(d >= 1 && d < (int64_t(1) << 31), "{}: dimension {} out of range in shape {}", what, d,
          shape_str(shape));
    n *= d;
    check(n < (int64_t(1) << 40), "{}: shape {} is absurdly large", what, shape_str(shape));
  }
  const int64_t cols = shape.back();
  check(cols % dtype_block_size(t) == 0, "{}: row length {} is not a multiple of the {} block size {}",
        what, cols, dtype_name(t), dtype_block_size(t));
  return size_t(n / dtype_block_size(t)) * dtype_block_bytes(t);
}

}  // namespace kvsieve
