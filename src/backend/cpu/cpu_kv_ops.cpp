// The KV store's and the eviction pipeline's ops on the CPU: append with
// conversion to the store's type, row gathers, key norms, pooling, query-group
// reduction and top-k selection per head.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/ops.h"
#include "core/adakv_split.h"
#include "core/error.h"
#include "core/select.h"

namespace kvsieve {
namespace {

size_t elem_bytes(DType t) { return dtype_row_bytes(t, 1); }

uint8_t* row_at(const KvLayerView& kv, void* base, int64_t s, int64_t j) {
  return static_cast<uint8_t*>(base) + size_t((s * kv.capacity + j) * kv.head_dim) * elem_bytes(kv.type);
}

// 1-D pooling with stride 1 and padding kernel/2, as torch's max_pool1d
// (padding never wins) and avg_pool1d with count_include_pad (zeros padded,
// divided by kernel). out [n], no alias.
void pool1d(const float* in, int64_t n, int64_t kernel, PoolKind kind, float* out) {
  if (kind == PoolKind::kNone || kernel == 1) {
    std::copy(in, in + n, out);
    return;
  }
  const int64_t r = kernel / 2;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t lo = std::max<int64_t>(0, i - r), hi = std::min<int64_t>(n - 1, i + r);
    if (kind == PoolKind::kMax) {
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t j = lo; j <= hi; ++j) m = std::max(m, in[j]);
      out[i] = m;
    } else {
      float s = 0.0f;  // summed in order, as a float, like torch's CPU kernel
      for (int64_t j = lo; j <= hi; ++j) s += in[j];
      out[i] = s / float(kernel);
    }
  }
}

}  // namespace

void CpuBackend::kv_append(const KvLayerView& kv, const float* k, const float* v,
                           const int32_t* pos, int64_t n, int64_t n_head_kv) {
  const int64_t hd = kv.head_dim, stride = n_head_kv * hd;
  for (int64_t s = 0; s < kv.n_stored; ++s) {
    const int64_t g = s / kv.repeat, r = kv.rows[s];  // the KV head this copy holds
    std::copy_n(pos, n, kv.pos + s * kv.capacity + r);
    for (int64_t t = 0; t < n; ++t) {
      quantize_row(kv.type, k + t * stride + g * hd, row_at(kv, kv.k, s, r + t), hd);
      quantize_row(kv.type, v + t * stride + g * hd, row_at(kv, kv.v, s, r + t), hd);
    }
  }
}

void CpuBackend::gather(const GatherArgs& a) {
  const auto* src = static_cast<const uint8_t*>(a.src);
  auto* dst = static_cast<uint8_t*>(a.dst);
  pool_.parallel_for(a.n_heads, [&](int64_t begin, int64_t end, int) {
    for (int64_t h = begin; h < end; ++h) {
      const int64_t sel = h / a.sel_div, from = h / a.src_div;
      const int64_t first = a.off[sel], cnt = a.off[sel + 1] - first;
      uint8_t* d = dst + size_t(h * a.ld_dst) * a.row_bytes;
      const uint8_t* s = src + size_t(from * a.ld_src) * a.row_bytes;
      for (int64_t j = 0; j < cnt; ++j)
        std::memcpy(d + size_t(j) * a.row_bytes, s + size_t(a.idx[first + j]) * a.row_bytes, a.row_bytes);
    }
  });
}

void CpuBackend::read_keys(const KvLayerView& kv, int64_t first, int64_t n, float* out) {
  const int64_t hd = kv.head_dim, n_kv = kv.n_stored / kv.repeat;
  for (int64_t g = 0; g < n_kv; ++g)
    for (int64_t i = 0; i < n; ++i)
      dequantize_row(kv.type, row_at(kv, kv.k, g * kv.repeat, first + i), out + (i * n_kv + g) * hd, hd);
}

void CpuBackend::key_norms(const KvLayerView& kv, float* out, int64_t ld) {
  const int64_t hd = kv.head_dim;
  std::vector<float> row(static_cast<size_t>(hd));
  for (int64_t s = 0; s < kv.n_stored; ++s)
    for (int64_t j = 0; j < kv.rows[s]; ++j) {
      const float* k = row.data();
      if (kv.type == DType::F32) k = reinterpret_cast<const float*>(row_at(kv, kv.k, s, j));
      else dequantize_row(kv.type, row_at(kv, kv.k, s, j), row.data(), hd);
      out[s * ld + j] = std::sqrt(dot_f32(k, k, hd));
    }
}

void CpuBackend::pool(const float* in, float* out, int64_t n_heads, int64_t ld, const int64_t* len,
                      const int64_t* rows, int64_t kernel, PoolKind kind) {
  check(kernel >= 1 && kernel % 2 == 1, "pooling kernel must be odd, got {}", kernel);
  for (int64_t h = 0; h < n_heads; ++h) {
    const float* x = in + h * ld;
    float* o = out + h * ld;
    std::copy(x, x + rows[h], o);
    pool1d(x, std::min(len[h], rows[h]), kernel, kind, o);
  }
}

void CpuBackend::reduce_groups(const float* in, float* out, int64_t n_out, int64_t group,
                               int64_t ld, const int64_t* rows, Reduce how) {
  for (int64_t g = 0; g < n_out; ++g) {
    float* o = out + g * ld;
    const int64_t n = rows[g];
    std::copy(in + g * group * ld, in + g * group * ld + n, o);
    for (int64_t i = 1; i < group; ++i) {
      const float* x = in + (g * group + i) * ld;
      for (int64_t j = 0; j < n; ++j) o[j] = how == Reduce::kMax ? std::max(o[j], x[j]) : o[j] + x[j];
    }
    if (how == Reduce::kMean)
      for (int64_t j = 0; j < n; ++j) o[j] /= float(group);
  }
}

void CpuBackend::select_rows(const float* scores, int64_t n_heads, int64_t ld, const int64_t* rows,
                             const int64_t* budget, int64_t sinks, int64_t window, int64_t* out,
                             const int64_t* off) {
  std::vector<std::string> errors(static_cast<size_t>(n_heads));
  pool_.parallel_for(n_heads, [&](int64_t begin, int64_t end, int) {
    for (int64_t h = begin; h < end; ++h) {
      try {
        const std::vector<int64_t> keep =
            kvsieve::select_rows(scores + h * ld, rows[h], budget[h], Protect{sinks, window});
        check(int64_t(keep.size()) == off[h + 1] - off[h], "select: {} rows kept, {} expected",
              keep.size(), off[h + 1] - off[h]);
        std::copy(keep.begin(), keep.end(), out + off[h]);
      } catch (const Error& e) {
        errors[size_t(h)] = e.what();
      }
    }
  });
  for (const auto& e : errors)
    if (!e.empty()) throw Error(e);
}

void CpuBackend::adakv_split(std::span<const AdaKvLayer> layers, int64_t n_heads, int64_t sinks,
                             int64_t window, double floor, const std::string& variant,
                             int64_t* out) {
  for (size_t i = 0; i < layers.size(); ++i) {
    const AdaKvLayer& l = layers[i];
    const std::vector<int64_t> per_head = kvsieve::adakv_split(
        l.scores, l.ld, l.rows, n_heads, l.keep, Protect{sinks, window}, floor, variant);
    std::copy(per_head.begin(), per_head.end(), out + int64_t(i) * n_heads);
  }
}

}  // namespace kvsieve
