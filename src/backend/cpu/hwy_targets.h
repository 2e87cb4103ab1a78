// The SIMD targets every Highway translation unit of the CPU backend compiles
// (ops_dispatch.cpp and the per-type K-quant files): they must agree, since
// ops_dispatch.cpp's per-target code calls the K-quant files' per-target
// functions by name. Included before any Highway header.
//
// SSE4, AVX2 and AVX3 (AVX-512) plus the scalar fallback. SSSE3 is left out
// (too little gain over the fallback for the extra compile time); AVX3_DL is
// not compiled because nothing here uses its extra instructions.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SSSE3 | HWY_AVX3_DL)
#endif
