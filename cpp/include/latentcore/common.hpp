// Shared types of every latentcore kernel, C++ and CUDA alike: plain C++ with
// no OpenMP and no CUDA header, so `.cu` files include it as the C++ sources
// do. The OpenMP helpers (thread counts, ParallelWork) are host-only and live
// in latentcore/parallel.hpp.
//
// LATENTCORE_HOST_DEVICE marks a function compiled for the host and, under
// nvcc, for the device too: the formulas both twins need are written once in
// such functions (latentcore/random.hpp, distance.hpp, interp.hpp, adam.hpp).
// In them a product and a sum that must round alone on the GPU are written
// mul_rn / add_rn / sub_rn / div_rn: plain operators on the host, the
// rounding intrinsics on the device (nvcc would otherwise fuse a product into
// a following sum), so both sides compute the same doubles.
#pragma once

#include <cstdint>
#include <vector>

#if defined(__CUDACC__)
#define LATENTCORE_HOST_DEVICE __host__ __device__
#else
#define LATENTCORE_HOST_DEVICE
#endif

// The hot scans are compiled twice, for AVX2 and for the baseline ISA, and the
// loader picks one at run time: wheels stay portable without -march=native.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#define LATENTCORE_DISPATCH __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define LATENTCORE_DISPATCH
#endif

namespace latentcore {

using index_t = std::int32_t;  // point / node / atom ids as they leave the library
using size_type = std::int64_t;  // counts and offsets, which overflow int32 at n*k

// A sparse matrix / weighted graph in CSR form, caller-owned: row r's entries
// are indices[indptr[r] .. indptr[r+1]) with their weights. The one graph type
// of the library: t-SNE affinities, k-NN graphs and random-walk graphs, on the
// CPU and (with device pointers) on the GPU.
template <typename Weight>
struct CsrGraph {
    const std::int64_t* indptr;  // (n_rows + 1)
    const index_t* indices;      // (nnz) column of each entry
    const Weight* weights;       // (nnz)
    size_type n_rows;
};

// The storage of a CsrGraph a C++ kernel builds and hands over (host only):
// graph() views it.
template <typename Weight>
struct CsrBuffers {
    std::vector<std::int64_t> indptr;
    std::vector<index_t> indices;
    std::vector<Weight> weights;

    CsrGraph<Weight> graph() const {
        return {indptr.data(), indices.data(), weights.data(), static_cast<size_type>(indptr.size()) - 1};
    }
};

// The k-NN metrics, by the codes Python passes (latentcore.knn's metric table).
enum class Metric : int { sqeuclidean = 0, euclidean = 1, cosine = 2, inner_product = 3 };

// True for a code that names a Metric.
LATENTCORE_HOST_DEVICE inline bool is_metric_code(int code) { return code >= 0 && code <= 3; }

// Fortran-interface SGEMM (column-major), as every BLAS exports it; the caller
// passes the one it trusts (Python hands over scipy's OpenBLAS), so the kernel
// library links no BLAS of its own. It must be safe to call from several
// threads at once with its own threading off.
using Sgemm = void (*)(const char* transa, const char* transb, const int* m, const int* n,
                       const int* k, const float* alpha, const float* a, const int* lda,
                       const float* b, const int* ldb, const float* beta, float* c,
                       const int* ldc);

// a * b, a + b, a - b, a / b, each rounded on its own on the device too;
// x86-64 host code has no FMA unless built for it (-march), which this
// project never does outside LATENTCORE_DISPATCH clones.
LATENTCORE_HOST_DEVICE inline double mul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __dmul_rn(a, b);
#else
    return a * b;
#endif
}
LATENTCORE_HOST_DEVICE inline double add_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __dadd_rn(a, b);
#else
    return a + b;
#endif
}
LATENTCORE_HOST_DEVICE inline double sub_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __dsub_rn(a, b);
#else
    return a - b;
#endif
}
LATENTCORE_HOST_DEVICE inline double div_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __ddiv_rn(a, b);
#else
    return a / b;
#endif
}

}  // namespace latentcore
