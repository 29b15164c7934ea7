// matmul: the small per-step products, straight into the BLAS that torch links.

#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/from_blob.h>

#include <cstdint>
#include <type_traits>

// The Fortran BLAS that torch links (MKL, OpenBLAS, Accelerate), as ATen's own CPUBlas
// calls it. Weak: on a torch that does not export these symbols they are null and the
// products go through ATen's dispatcher instead.
extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc) __attribute__((weak));
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const double* alpha, const double* a, const int* lda, const double* b,
            const int* ldb, const double* beta, double* c, const int* ldc) __attribute__((weak));
}

namespace lstmkit::native {

template <typename scalar_t>
constexpr auto fortran_gemm() {
  if constexpr (std::is_same_v<scalar_t, float>) return &sgemm_;
  else return &dgemm_;
}

// Row-major C (m, n) = A (m, k) @ B (k, n) + beta * C, A or B read transposed when asked.
// The per-step products are small: at batch 1 the dispatcher and the tensor views it
// needs would cost several times the product itself, so BLAS is called directly.
template <typename scalar_t>
void matmul(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
            const scalar_t* a, int64_t lda, const scalar_t* b, int64_t ldb, scalar_t beta,
            scalar_t* c, int64_t ldc) {
  const auto gemm = fortran_gemm<scalar_t>();
  if (gemm != nullptr) {
    // column-major BLAS computes C^T = B^T A^T: the same memory, operands swapped
    const int m_ = m, n_ = n, k_ = k, lda_ = lda, ldb_ = ldb, ldc_ = ldc;
    const scalar_t one = 1;
    gemm(transpose_b ? "T" : "N", transpose_a ? "T" : "N", &n_, &m_, &k_, &one, b, &ldb_, a,
         &lda_, &beta, c, &ldc_);
    return;
  }
  const auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<scalar_t>::value);
  auto matrix = [&](const scalar_t* data, bool transpose, int64_t rows, int64_t cols,
                    int64_t ld) {
    // the stored matrix is (cols, rows) when read transposed
    at::Tensor stored = at::from_blob(const_cast<scalar_t*>(data), {transpose ? cols : rows,
                                  transpose ? rows : cols}, {ld, 1}, options);
    return transpose ? stored.t() : stored;
  };
  at::Tensor c_matrix = at::from_blob(c, {m, n}, {ldc, 1}, options);
  at::addmm_out(c_matrix, c_matrix, matrix(a, transpose_a, m, k, lda),
                matrix(b, transpose_b, k, n, ldb), beta, 1);
}

}  // namespace lstmkit::native
