// Shared types and helpers for every latentcore kernel.
#pragma once

#include <cstdint>

#include <omp.h>

namespace latentcore {

using index_t = std::int32_t;  // point / node / atom ids as they leave the library
using size_type = std::int64_t;  // counts and offsets, which overflow int32 at n*k

// A sparse matrix / weighted graph in CSR form, caller-owned: row r's entries
// are indices[indptr[r] .. indptr[r+1]) with their weights. The one graph type
// of the library: t-SNE affinities, k-NN graphs and random-walk graphs.
template <typename Weight>
struct CsrGraph {
    const std::int64_t* indptr;  // (n_rows + 1)
    const index_t* indices;      // (nnz) column of each entry
    const Weight* weights;       // (nnz)
    size_type n_rows;
};

// Fortran-interface SGEMM (column-major), as every BLAS exports it; the caller
// passes the one it trusts (Python hands over scipy's OpenBLAS), so the kernel
// library links no BLAS of its own. It must be safe to call from several
// threads at once with its own threading off.
using Sgemm = void (*)(const char* transa, const char* transb, const int* m, const int* n,
                       const int* k, const float* alpha, const float* a, const int* lda,
                       const float* b, const int* ldb, const float* beta, float* c,
                       const int* ldc);

// Thread count for one kernel call: n_threads <= 0 means "all OpenMP threads".
inline int resolve_threads(int n_threads) {
    return n_threads > 0 ? n_threads : omp_get_max_threads();
}

}  // namespace latentcore

// The hot scans are compiled twice, for AVX2 and for the baseline ISA, and the
// loader picks one at run time: wheels stay portable without -march=native.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#define LATENTCORE_DISPATCH __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define LATENTCORE_DISPATCH
#endif
