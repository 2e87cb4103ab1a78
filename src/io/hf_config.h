// Hugging Face config.json -> ModelConfig, for LlamaForCausalLM,
// MistralForCausalLM and Qwen2ForCausalLM. Both RoPE forms are read:
//   transformers <= 4: "rope_theta": 500000.0, "rope_scaling": {"rope_type"|"type": "llama3", ...}
//   transformers 5:    "rope_parameters": {"rope_theta": 500000.0, "rope_type": "llama3", ...}
// rope_style is always neox (HF's rotate_half layout of the q/k rows).
#pragma once
#include <string>

#include "model/model_config.h"

namespace kvsieve {

// Parses config.json text; `where` (the file path) prefixes every message.
// The result is validated: missing or negative sizes, heads that do not divide,
// unsupported architectures, activations, biases or RoPE scaling throw Error.
ModelConfig parse_hf_config(const std::string& json_text, const std::string& where);

// Reads and parses a config.json file.
ModelConfig load_hf_config(const std::string& config_json_path);

}  // namespace kvsieve
