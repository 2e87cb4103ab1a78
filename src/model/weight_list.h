// The one list of a model's weight tensors: every loader check, the GGUF
// writer and the Model's binding walk this list, so a tensor is named once.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/model_config.h"

namespace kvsieve {

enum class WeightKind {
  kMatrix,  // 2-D, may be quantized
  kVector,  // 1-D norm weight or bias: always used as f32
};

struct WeightSpec {
  std::string name;            // canonical (GGUF) name
  std::vector<int64_t> shape;  // row-major
  WeightKind kind;
  int64_t layer;               // -1 for global tensors
  bool required;
};

// Calls fn for every tensor the config implies, in file order.
void for_each_weight(const ModelConfig& c, const std::function<void(const WeightSpec&)>& fn);

}  // namespace kvsieve
