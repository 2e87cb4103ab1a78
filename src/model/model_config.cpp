#include "model/model_config.h"

#include <cmath>

#include "core/error.h"

namespace kvsieve {

void ModelConfig::validate() const {
  auto positive = [](const char* what, int64_t v, int64_t max) {
    check(v > 0 && v <= max, "model config: {} = {} is out of range (1..{})", what, v, max);
  };
  check(arch == "llama" || arch == "qwen2", "model config: unsupported architecture '{}'", arch);
  positive("vocab size", n_vocab, int64_t(1) << 24);
  positive("hidden size", n_embd, int64_t(1) << 17);
  positive("layers", n_layer, 1024);
  positive("attention heads", n_head, 1024);
  positive("kv heads", n_head_kv, 1024);
  positive("head dim", head_dim, 1024);
  positive("feed-forward size", n_ff, int64_t(1) << 20);
  check(n_head % n_head_kv == 0, "model config: {} attention heads are not a multiple of {} kv heads",
        n_head, n_head_kv);
  check(head_dim % 2 == 0, "model config: head dim {} must be even for RoPE", head_dim);
  check(std::isfinite(rms_eps) && rms_eps > 0, "model config: bad RMSNorm epsilon {}", rms_eps);
  check(std::isfinite(rope_theta) && rope_theta > 0, "model config: bad RoPE theta {}", rope_theta);
  if (rope_scaling.type != RopeScalingType::kNone)
    check(std::isfinite(rope_scaling.factor) && rope_scaling.factor > 0,
          "model config: bad RoPE scaling factor {}", rope_scaling.factor);
  if (rope_scaling.type == RopeScalingType::kLlama3)
    check(rope_scaling.high_freq_factor > rope_scaling.low_freq_factor &&
              rope_scaling.low_freq_factor > 0 && rope_scaling.original_max_position > 0,
          "model config: bad llama3 RoPE scaling (low {}, high {}, original context {})",
          rope_scaling.low_freq_factor, rope_scaling.high_freq_factor,
          rope_scaling.original_max_position);
}

RopeFreqs rope_freqs_for(const ModelConfig& cfg, const float* freq_factors) {
  return RopeFreqs::make(cfg.head_dim, cfg.rope_theta, cfg.rope_scaling, freq_factors);
}

}  // namespace kvsieve
