// Shared types and helpers for every latentcore kernel.
#pragma once

#include <cstdint>

#include <omp.h>

namespace latentcore {

using index_t = std::int32_t;  // point / node / atom ids as they leave the library
using size_type = std::int64_t;  // counts and offsets, which overflow int32 at n*k

// Thread count for one kernel call: n_threads <= 0 means "all OpenMP threads".
inline int resolve_threads(int n_threads) {
    return n_threads > 0 ? n_threads : omp_get_max_threads();
}

}  // namespace latentcore

// The hot scans are compiled twice, for AVX2 and for the baseline ISA, and the
// loader picks one at run time: wheels stay portable without -march=native.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#define LATENTCORE_DISPATCH __attribute__((target_clones("avx2", "default")))
#else
#define LATENTCORE_DISPATCH
#endif
