#include "backend/cuda/cuda_blas.h"

#include <dlfcn.h>

#include <string>

#include "core/error.h"

namespace kvsieve::cuda {
namespace {

template <typename F>
void bind(void* lib, const char* name, F& f) {
  f = reinterpret_cast<F>(dlsym(lib, name));
  check(f != nullptr, "CUDA: cuBLAS has no '{}'", name);
}

Blas open_blas() {
  void* lib = nullptr;
  std::string tried;
  for (const char* name : {"libcublas.so.13", "libcublas.so"}) {
    lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (lib) break;
    tried += std::string(tried.empty() ? "" : "; ") + dlerror();
  }
  check(lib != nullptr,
        "CUDA: cannot open cuBLAS ({}): install the CUDA toolkit's libraries or add their folder "
        "to LD_LIBRARY_PATH",
        tried);
  Blas b{};
  bind(lib, "cublasCreate_v2", b.create);
  bind(lib, "cublasDestroy_v2", b.destroy);
  bind(lib, "cublasSetStream_v2", b.set_stream);
  bind(lib, "cublasSetMathMode", b.set_math_mode);
  bind(lib, "cublasGemmEx", b.gemm_ex);
  return b;
}

}  // namespace

const Blas& blas() {
  static const Blas b = open_blas();  // never closed: handles may outlive static destructors
  return b;
}

}  // namespace kvsieve::cuda
