#include "io/quant_scheme.h"

#include <cctype>

namespace kvsieve {

std::optional<QuantScheme> quant_scheme_from_name(std::string_view s) {
  std::string u(s);
  for (auto& c : u) c = char(std::toupper(static_cast<unsigned char>(c)));
  if (u == "Q4_K_M" || u == "Q5_K_M") {
    QuantScheme q;
    q.base = u == "Q4_K_M" ? DType::Q4_K : DType::Q5_K;
    q.mix = true;
    q.name = u;
    return q;
  }
  const auto t = dtype_from_name(s);
  if (!t) return std::nullopt;
  return QuantScheme{*t, false, std::string(dtype_name(*t))};
}

const char* quant_scheme_names() { return "f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q5_k, q6_k, q4_k_m, q5_k_m"; }

namespace {
bool more_bits(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }
bool ends_with(const std::string& s, std::string_view t) {
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}
}  // namespace

DType scheme_type_for(const QuantScheme& s, const WeightSpec& w, int64_t n_layer, bool tied_embeddings) {
  if (!s.mix) return s.base;
  // The output projection reads every logit: the most sensitive matrix.
  if (w.name == "output.weight" || (tied_embeddings && w.name == "token_embd.weight")) return DType::Q6_K;
  if (w.layer >= 0 && (ends_with(w.name, ".attn_v.weight") || ends_with(w.name, ".ffn_down.weight")) &&
      more_bits(w.layer, n_layer))
    return DType::Q6_K;
  return s.base;
}

uint32_t scheme_file_type(const QuantScheme& s) {
  switch (s.base) {
    case DType::F32: return 0;
    case DType::F16: return 1;
    case DType::Q4_0: return 2;
    case DType::Q4_1: return 3;
    case DType::Q8_0: return 7;
    case DType::Q4_K: return s.mix ? 15 : 14;  // MOSTLY_Q4_K_M / _S
    case DType::Q5_K: return s.mix ? 17 : 16;  // MOSTLY_Q5_K_M / _S
    case DType::Q6_K: return 18;
    case DType::BF16: return 32;
    default: return 0;
  }
}

}  // namespace kvsieve
