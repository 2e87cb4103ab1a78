// cuBLAS, opened at run time. Linking it would map ~600 MB of libraries into
// every kvsieve process (about 200 MB of resident memory at start-up, GPU or
// not); opened on the first CUDA backend instead, CPU runs never pay for it.
#pragma once
#include <cublas_v2.h>

namespace kvsieve::cuda {

// The entry points kvsieve uses; members named as the cuBLAS functions.
struct Blas {
  cublasStatus_t (*create)(cublasHandle_t*);
  cublasStatus_t (*destroy)(cublasHandle_t);
  cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t);
  cublasStatus_t (*set_math_mode)(cublasHandle_t, cublasMath_t);
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                            const void*, const void*, cudaDataType_t, int, const void*,
                            cudaDataType_t, int, const void*, void*, cudaDataType_t, int,
                            cublasComputeType_t, cublasGemmAlgo_t);
};

// Opens libcublas once (thread-safe); throws Error naming what is missing.
const Blas& blas();

}  // namespace kvsieve::cuda
