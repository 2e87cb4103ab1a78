#include "backend/cpu/ops_ref.h"

#include <cmath>
#include <limits>
#include <vector>

namespace kvsieve::ref {

void matmul(const TensorView& W, const float* x, int64_t n, float* y, const float* bias) {
  const int64_t rows = W.rows(), cols = W.cols();
  std::vector<float> w(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    dequantize_row(W.type, W.row_ptr(r), w.data(), cols);
    for (int64_t i = 0; i < n; ++i) {
      double s = bias ? double(bias[r]) : 0.0;
      for (int64_t k = 0; k < cols; ++k) s += double(w[size_t(k)]) * double(x[i * cols + k]);
      y[i * rows + r] = float(s);
    }
  }
}

void rmsnorm(const float* x, const float* weight, float* out, int64_t n, float eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += double(x[i]) * double(x[i]);
  const double scale = n > 0 ? 1.0 / std::sqrt(ss / double(n) + double(eps)) : 0.0;
  for (int64_t i = 0; i < n; ++i) out[i] = float(double(x[i]) * scale * double(weight[i]));
}

void softmax_inplace(float* x, int64_t n) {
  if (n <= 0) return;
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, double(x[i]));
  std::vector<double> e(static_cast<size_t>(n));
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += e[size_t(i)] = std::exp(double(x[i]) - mx);
  for (int64_t i = 0; i < n; ++i) x[i] = float(e[size_t(i)] / sum);
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i];
    out[i] = float(g / (1.0 + std::exp(-g)) * double(up[i]));
  }
}

double dot(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(a[i]) * double(b[i]);
  return s;
}

void axpy_f32(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = float(double(y[i]) + double(a) * double(x[i]));
}

void dot_rows_f32(const float* q, const float* rows, int64_t n_rows, int64_t stride, int64_t dim,
                  float* out) {
  for (int64_t t = 0; t < n_rows; ++t) out[t] = float(dot(q, rows + t * stride, dim));
}

void axpy_rows_f32(const float* a, const float* rows, int64_t n_rows, int64_t stride, int64_t dim,
                   float* y) {
  for (int64_t i = 0; i < dim; ++i) {
    double s = y[i];
    for (int64_t t = 0; t < n_rows; ++t) s += double(a[t]) * double(rows[t * stride + i]);
    y[i] = float(s);
  }
}

void scale_f32(float* x, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

void add_f32(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void apply_rope(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin,
                RopeStyle style) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      float& a = style == RopeStyle::kInterleaved ? v[2 * i] : v[i];
      float& b = style == RopeStyle::kInterleaved ? v[2 * i + 1] : v[i + half];
      const double c = cos[i], s = sin[i], da = a, db = b;
      a = float(da * c - db * s);
      b = float(db * c + da * s);
    }
  }
}

}  // namespace kvsieve::ref
