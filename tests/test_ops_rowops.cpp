// Row and elementwise kernels against their scalar references (ops_ref.h),
// on every SIMD target this CPU runs, over sizes 0..2·(widest vector)+ and
// a few large ones, with misaligned pointers.
//
// Tolerances come from the textbook bound for f32 sums: any summation order
// of n terms (FMA or not) is within (n + 2)·u·Σ|terms| of the exact sum, u =
// 2^-24. Elementwise ops with one or two roundings get a few u relative.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backend/cpu/kernel_table.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/ops_ref.h"
#include "test_ops_util.h"

using namespace kvsieve;
using kvsieve::testing::fill_uniform;
using kvsieve::testing::kU;
using kvsieve::testing::Misaligned;

namespace {

// 0..80 covers 0..2N+ for N = 16 lanes (AVX-512) and the 4-vector unrolled
// loops; the large sizes run the main loops many times.
std::vector<int64_t> sizes() {
  std::vector<int64_t> s;
  for (int64_t n = 0; n <= 80; ++n) s.push_back(n);
  for (int64_t n : {127, 128, 129, 257, 1000, 4096, 4099}) s.push_back(n);
  return s;
}

constexpr float kGuard = 12345.0f;

}  // namespace

TEST(Ops, TargetsAreListedBestFirst) {
  const auto all = cpu_kernels_all();
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.front(), &cpu_kernels());
  EXPECT_STREQ(cpu_kernel_target(), all.front()->target);
  EXPECT_STREQ(all.back()->target, "SCALAR");  // the fallback is always there
}

TEST(Ops, DotMatchesReference) {
  std::mt19937 rng(1);
  for (const CpuKernels* k : cpu_kernels_all()) {
    SCOPED_TRACE(k->target);
    for (int64_t n : sizes()) {
      Misaligned a(n), b(n);
      fill_uniform(a.data(), n, rng);
      fill_uniform(b.data(), n, rng);
      const double ref = ref::dot(a.data(), b.data(), n);
      double abs_sum = 0;
      for (int64_t i = 0; i < n; ++i) abs_sum += std::fabs(double(a[i]) * b[i]);
      const double got = k->dot(a.data(), b.data(), n);
      EXPECT_NEAR(got, ref, (n + 2) * kU * abs_sum) << "n=" << n;
    }
  }
  // The public entry point is the best target.
  std::vector<float> a{1, 2, 3}, b{4, 5, 6};
  EXPECT_EQ(dot_f32(a.data(), b.data(), 3), 32.0f);
}

TEST(Ops, AxpyScaleAddMatchReference) {
  std::mt19937 rng(2);
  for (const CpuKernels* k : cpu_kernels_all()) {
    SCOPED_TRACE(k->target);
    for (int64_t n : sizes()) {
      Misaligned x(n), y(n), y_ref(n), out(n);
      fill_uniform(x.data(), n, rng);
      fill_uniform(y.data(), n, rng);
      for (int64_t i = 0; i < n; ++i) y_ref[i] = y[i];
      *y.guard(n) = *out.guard(n) = kGuard;

      // axpy: one fused rounding (two on the scalar fallback, which has no FMA).
      const float a = 0.37f;
      ref::axpy_f32(a, x.data(), y_ref.data(), n);
      const std::vector<float> y0(y.data(), y.data() + n);
      k->axpy(a, x.data(), y.data(), n);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(y[i], y_ref[i], 2 * kU * (std::fabs(a * x[i]) + std::fabs(y0[size_t(i)])))
            << "axpy n=" << n << " i=" << i;
      EXPECT_EQ(*y.guard(n), kGuard) << "axpy wrote past the end, n=" << n;

      // scale and add: one rounding each, so bit-identical to the reference.
      std::vector<float> s_ref(x.data(), x.data() + n);
      ref::scale_f32(s_ref.data(), -1.7f, n);
      k->scale(x.data(), -1.7f, n);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(x[i], s_ref[size_t(i)]) << "scale n=" << n;

      std::vector<float> add_ref(static_cast<size_t>(n) + 1);
      ref::add_f32(x.data(), y.data(), add_ref.data(), n);
      k->add(x.data(), y.data(), out.data(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(out[i], add_ref[size_t(i)]) << "add n=" << n;
      EXPECT_EQ(*out.guard(n), kGuard) << "add wrote past the end, n=" << n;
      // In place (out aliases a), as the residual add is used.
      k->add(y.data(), x.data(), y.data(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[i], add_ref[size_t(i)]) << "add in place n=" << n;
    }
  }
}

TEST(Ops, RmsNormMatchesReference) {
  std::mt19937 rng(3);
  for (const CpuKernels* k : cpu_kernels_all()) {
    SCOPED_TRACE(k->target);
    for (int64_t n : sizes()) {
      if (n == 0) continue;
      Misaligned x(n), w(n), out(n), ref_out(n);
      fill_uniform(x.data(), n, rng, -3.0f, 3.0f);
      fill_uniform(w.data(), n, rng, 0.5f, 1.5f);
      *out.guard(n) = kGuard;
      const float eps = 1e-5f;
      ref::rmsnorm(x.data(), w.data(), ref_out.data(), n, eps);
      k->rmsnorm(x.data(), w.data(), out.data(), n, eps);
      // Mean of squares: (n + 2)u relative (all terms positive); 1/sqrt halves
      // it and adds ~2u; two final products add 2u.
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(out[i], ref_out[i], (n / 2.0 + 6) * kU * std::fabs(ref_out[i]) + 1e-30)
            << "n=" << n << " i=" << i;
      EXPECT_EQ(*out.guard(n), kGuard);
      // In place.
      k->rmsnorm(x.data(), w.data(), x.data(), n, eps);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(x[i], out[i]);
    }
  }
}

TEST(Ops, SoftmaxMatchesReference) {
  std::mt19937 rng(4);
  for (const CpuKernels* k : cpu_kernels_all()) {
    SCOPED_TRACE(k->target);
    for (int64_t n : sizes()) {
      Misaligned x(n);
      fill_uniform(x.data(), n, rng, -12.0f, 12.0f);
      if (n > 3) x[n / 2] = -1e30f;  // a masked-out score: exp underflows to 0
      *x.guard(n) = kGuard;
      std::vector<float> r(x.data(), x.data() + n), orig = r;
      ref::softmax_inplace(r.data(), n);
      k->softmax(x.data(), n);
      float mx = -INFINITY;
      for (float v : orig) mx = std::max(mx, v);
      double total = 0;
      for (int64_t i = 0; i < n; ++i) {
        // exp is within 1 ulp (Highway); x - max rounds with error u·|x - max|
        // which exp turns into a relative error of that size; the sum adds (n+2)u.
        const double tol = (n + 8 + 2 * std::fabs(double(orig[size_t(i)]) - mx)) * kU * r[size_t(i)];
        ASSERT_NEAR(x[i], r[size_t(i)], tol + 1e-37) << "n=" << n << " i=" << i;
        total += x[i];
      }
      if (n > 0) {
        EXPECT_NEAR(total, 1.0, 1e-5);
      }
      EXPECT_EQ(*x.guard(n), kGuard);
    }
  }
}

TEST(Ops, SiluMulMatchesReference) {
  std::mt19937 rng(5);
  for (const CpuKernels* k : cpu_kernels_all()) {
    SCOPED_TRACE(k->target);
    for (int64_t n : sizes()) {
      Misaligned g(n), u(n), out(n);
      fill_uniform(g.data(), n, rng, -12.0f, 12.0f);
      fill_uniform(u.data(), n, rng, -2.0f, 2.0f);
      // Extremes: exp(-g) would overflow f32 for g < -88.7 in the naive formula.
      if (n > 2) {
        g[0] = -150.0f;
        g[1] = 95.0f;
      }
      *out.guard(n) = kGuard;
      std::vector<float> r(static_cast<size_t>(n) + 1);
      ref::silu_mul(g.data(), u.data(), r.data(), n);
      k->silu_mul(g.data(), u.data(), out.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        // exp (1 ulp), 1 + e, the division, the select's product and two
        // final products: < 8u relative. Results below f32's normal range
        // (g << -87) are compared absolutely.
        ASSERT_NEAR(out[i], r[size_t(i)], 8 * kU * std::fabs(r[size_t(i)]) + 1e-37)
            << "n=" << n << " g=" << g[i];
      }
      EXPECT_EQ(*out.guard(n), kGuard);
      // out may alias gate.
      k->silu_mul(g.data(), u.data(), g.data(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(g[i], out[i]);
    }
  }
}

TEST(Ops, DotRowsAndAxpyRowsMatchReference) {
  std::mt19937 rng(6);
  for (const CpuKernels* k : cpu_kernels_all()) {
    SCOPED_TRACE(k->target);
    for (int64_t dim : {0, 1, 5, 15, 16, 17, 33, 63, 64, 65, 128, 130}) {
      for (int64_t n_rows : {0, 1, 3, 4, 5, 9}) {
        const int64_t stride = dim + 3;  // rows not contiguous, not aligned
        Misaligned q(dim), rows(n_rows * stride), a(n_rows), y(dim), out(n_rows);
        fill_uniform(q.data(), dim, rng);
        fill_uniform(rows.data(), n_rows * stride, rng);
        fill_uniform(a.data(), n_rows, rng, 0.0f, 1.0f);
        fill_uniform(y.data(), dim, rng);
        *out.guard(n_rows) = *y.guard(dim) = kGuard;

        // Scores: each a dot product of dim terms, the usual (dim + 2)u bound.
        k->dot_rows(q.data(), rows.data(), n_rows, stride, dim, out.data());
        for (int64_t t = 0; t < n_rows; ++t) {
          const float* r = rows.data() + t * stride;
          double mag = 0;
          for (int64_t i = 0; i < dim; ++i) mag += std::fabs(double(q[i]) * r[i]);
          ASSERT_NEAR(out[t], ref::dot(q.data(), r, dim), (dim + 2) * kU * mag + 1e-30)
              << "dot_rows dim=" << dim << " rows=" << n_rows << " t=" << t;
        }
        EXPECT_EQ(*out.guard(n_rows), kGuard);

        // Weighted sum: y[i] plus n_rows products, (n_rows + 3)u bound.
        std::vector<float> y_ref(y.data(), y.data() + dim);
        ref::axpy_rows_f32(a.data(), rows.data(), n_rows, stride, dim, y_ref.data());
        std::vector<float> y0(y.data(), y.data() + dim);
        k->axpy_rows(a.data(), rows.data(), n_rows, stride, dim, y.data());
        for (int64_t i = 0; i < dim; ++i) {
          double mag = std::fabs(y0[size_t(i)]);
          for (int64_t t = 0; t < n_rows; ++t) mag += std::fabs(double(a[t]) * rows[t * stride + i]);
          ASSERT_NEAR(y[i], y_ref[size_t(i)], (n_rows + 3) * kU * mag + 1e-30)
              << "axpy_rows dim=" << dim << " rows=" << n_rows << " i=" << i;
        }
        EXPECT_EQ(*y.guard(dim), kGuard);
      }
    }
  }
}
