// The CUDA device of a build without CUDA (see cuda_device.h).
#include "backend/cuda/cuda_device.h"
#include "core/error.h"

namespace kvsieve {

bool cuda_built() { return false; }
void cuda_forget_weights(const void*) {}
bool cuda_device_present() { return false; }

std::unique_ptr<Backend> make_cuda_backend(GpuMath) {
  fail("this kvsieve was built without CUDA: rebuild with -DKVSIEVE_CUDA=ON (needs the CUDA "
       "toolkit) to run on a GPU, or use --device cpu");
}

}  // namespace kvsieve
