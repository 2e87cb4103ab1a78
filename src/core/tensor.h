// A view of a weight tensor that lives elsewhere (a mapped file or an owned
// buffer). Shapes are row-major, outermost first, like PyTorch: a linear
// layer's weight is [out_features, in_features] and each row of in_features
// values is contiguous. (GGUF lists dimensions innermost first; the GGUF
// reader and writer reverse them.)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace kvsieve {

struct TensorView {
  std::string name;
  DType type = DType::F32;
  std::vector<int64_t> shape;  // outermost first
  const void* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
  int64_t rows() const { return shape.empty() ? 1 : numel() / shape.back(); }
  int64_t cols() const { return shape.empty() ? 1 : shape.back(); }
  const uint8_t* row_ptr(int64_t r) const {
    return static_cast<const uint8_t*>(data) + size_t(r) * dtype_row_bytes(type, cols());
  }
};

// One product of a group that shares its input x (Backend::matmuls): y[n,
// W->rows] = x · W->ᵀ (+ bias[W->rows], when not null).
struct MatmulOut {
  const TensorView* W = nullptr;
  float* y = nullptr;
  const float* bias = nullptr;
};

// "[4096, 32000]" for messages.
std::string shape_str(const std::vector<int64_t>& shape);

// Validates a shape read from a file: 1..4 dims, each in [1, 2^31), element
// count below 2^40, rows divisible into blocks; returns the byte size.
// Throws Error naming `what` otherwise.
size_t checked_tensor_bytes(const std::string& what, DType t, const std::vector<int64_t>& shape);

}  // namespace kvsieve
