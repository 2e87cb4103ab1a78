// write_model_gguf: any ModelSource -> a llama.cpp-compatible GGUF file.
// Tensors are produced one at a time while the file is written (GgufWriter's
// lazy tensors), so converting a large model needs one tensor's worth of memory.
#include <cstring>
#include <map>

#include "core/error.h"
#include "core/thread_pool.h"
#include "io/gguf.h"
#include "io/gguf_model.h"
#include "io/model_source.h"
#include "io/qk_permute.h"
#include "io/quant_scheme.h"
#include "model/weight_list.h"
#include "tokenizer/vocab_loaders.h"

namespace kvsieve {

namespace {

bool is_quantized(DType t) { return dtype_block_size(t) > 1; }

// The type a tensor is written in: the scheme's, unless its rows do not hold
// whole blocks. Then a K-quant falls back to Q8_0 where rows hold blocks of
// 32 (llama.cpp falls back to Q5_0/Q5_1/Q8_0, which kvsieve does not all
// have; Q8_0 is the safe side), and anything else to F16 (or stays F16/BF16).
DType target_type(const WeightSpec& w, const TensorView& src, const QuantScheme* scheme, const ModelConfig& c,
                  const std::function<void(const std::string&)>& log) {
  if (w.kind == WeightKind::kVector) return DType::F32;  // norms, biases, rope_freqs
  if (!scheme) return src.type;
  const DType want = scheme_type_for(*scheme, w, c.n_layer, c.tied_embeddings);
  const int64_t cols = src.cols();
  if (cols % dtype_block_size(want) == 0) return want;
  DType keep = (src.type == DType::F16 || src.type == DType::BF16) ? src.type : DType::F16;
  if (is_kquant(want) && cols % kQK == 0) keep = DType::Q8_0;
  if (log)
    log(fmt::format("{}: row length {} is not a multiple of {}, written as {} instead of {}", w.name, cols,
                    dtype_block_size(want), dtype_name(keep), dtype_name(want)));
  return keep;
}

}  // namespace

void write_model_gguf(const ModelSource& m, const std::string& out_path, std::optional<DType> out_type) {
  write_model_gguf(m, out_path, out_type, nullptr);
}

void write_model_gguf(const ModelSource& m, const std::string& out_path, std::optional<DType> out_type,
                      const std::function<void(const std::string&)>& log) {
  std::optional<QuantScheme> scheme;
  if (out_type) scheme = QuantScheme{*out_type, false, std::string(dtype_name(*out_type))};
  write_model_gguf(m, out_path, scheme ? &*scheme : nullptr, log);
}

void write_model_gguf(const ModelSource& m, const std::string& out_path, const QuantScheme* scheme,
                      const std::function<void(const std::string&)>& log) {
  check_model_tensors(m);
  const ModelConfig& c = m.config;
  GgufWriter w;
  config_to_gguf(c, w);

  // GGUF "llama" files hold q/k rows interleaved, "qwen2" files in neox halves.
  const RopeStyle file_style = c.arch == "llama" ? RopeStyle::kInterleaved : RopeStyle::kNeox;
  const bool permute = c.rope_style != file_style;
  const QkDirection dir =
      file_style == RopeStyle::kInterleaved ? QkDirection::kNeoxToInterleaved : QkDirection::kInterleavedToNeox;

  auto pool = std::make_shared<ThreadPool>(0);
  std::map<DType, size_t> matrix_bytes;
  size_t total_bytes = 0;
  bool any_quantized = false;
  for_each_weight(c, [&](const WeightSpec& spec) {
    if (spec.name == "rope_freqs.weight") return;  // below
    const TensorView* src = m.find(spec.name);
    if (!src) return;  // optional and absent (checked above)
    const DType dt = target_type(spec, *src, scheme, c, log);
    const size_t bytes = checked_tensor_bytes(spec.name, dt, src->shape);
    total_bytes += bytes;
    if (spec.kind == WeightKind::kMatrix) matrix_bytes[dt] += bytes;
    any_quantized |= is_quantized(dt);

    // Heads whose rows move between RoPE layouts (q: n_head, k: n_head_kv).
    int64_t heads = 0;
    if (permute) {
      const std::string& n = spec.name;
      auto ends = [&n](const char* s) {
        const size_t k = std::strlen(s);
        return n.size() >= k && n.compare(n.size() - k, k, s) == 0;
      };
      if (ends(".attn_q.weight") || ends(".attn_q.bias")) heads = c.n_head;
      if (ends(".attn_k.weight") || ends(".attn_k.bias")) heads = c.n_head_kv;
    }
    const TensorView s = *src;
    const int64_t hd = c.head_dim;
    w.add_tensor_lazy(spec.name, dt, s.shape, [s, dt, heads, hd, dir, pool](uint8_t* dst) {
      // Biases are permuted like matrices whose rows are single values.
      const bool vec = s.shape.size() == 1;
      const int64_t rows = vec ? s.numel() : s.rows();
      const int64_t cols = vec ? 1 : s.cols();
      const size_t src_row = vec ? dtype_block_bytes(s.type) : dtype_row_bytes(s.type, cols);
      const size_t dst_row = vec ? dtype_block_bytes(dt) : dtype_row_bytes(dt, cols);
      // Source row of each destination row.
      std::vector<int64_t> from(static_cast<size_t>(rows));
      for (int64_t r = 0; r < rows; ++r) from[size_t(r)] = r;
      if (heads > 0) {
        std::vector<int64_t> ids(from);
        permute_qk_rows(ids.data(), from.data(), heads, hd, sizeof(int64_t), dir);
      }
      const auto* sp = static_cast<const uint8_t*>(s.data);
      if (vec) {
        // Few values: convert element by element.
        for (int64_t r = 0; r < rows; ++r) {
          float x;
          dequantize_row(s.type, sp + size_t(from[size_t(r)]) * src_row, &x, 1);
          quantize_row(dt, &x, dst + size_t(r) * dst_row, 1);
        }
        return;
      }
      pool->parallel_for(
          rows,
          [&](int64_t b, int64_t e, int) {
            std::vector<float> tmp(static_cast<size_t>(cols));
            for (int64_t r = b; r < e; ++r) {
              const uint8_t* in = sp + size_t(from[size_t(r)]) * src_row;
              uint8_t* out = dst + size_t(r) * dst_row;
              if (s.type == dt) {
                std::memcpy(out, in, src_row);
              } else {
                dequantize_row(s.type, in, tmp.data(), cols);
                quantize_row(dt, tmp.data(), out, cols);
              }
            }
          },
          64);
    });
  });

  // RoPE frequency divisors: computed for llama3 scaling (llama.cpp reads only
  // these), or carried over from a llama.cpp file.
  std::vector<float> freqs;
  if (c.rope_scaling.type == RopeScalingType::kLlama3 && c.arch == "llama") {
    freqs = llama3_rope_freq_factors(c);
  } else if (const TensorView* rf = m.find("rope_freqs.weight")) {
    freqs.resize(size_t(rf->numel()));
    dequantize_row(rf->type, rf->data, freqs.data(), rf->numel());
  }
  if (!freqs.empty()) w.add_tensor("rope_freqs.weight", DType::F32, {int64_t(freqs.size())}, freqs.data());

  // general.file_type: the scheme's, else the type holding most matrix bytes
  // (llama.cpp's "mostly X").
  DType main_type = DType::F32;
  size_t best = 0;
  for (const auto& [t, b] : matrix_bytes)
    if (b > best) best = b, main_type = t;
  w.set_u32("general.file_type", scheme_file_type(scheme ? *scheme : QuantScheme{main_type, false, ""}));
  if (any_quantized) w.set_u32("general.quantization_version", 2);
  if (m.vocab) vocab_to_gguf(*m.vocab, w);

  // Progress for big models only (tests and tiny models stay quiet).
  if (log && total_bytes > (size_t(256) << 20))
    w.set_progress([&log](size_t i, size_t n, const std::string& name) {
      log(fmt::format("[{}/{}] {}", i + 1, n, name));
    });
  w.write(out_path);
}

}  // namespace kvsieve
