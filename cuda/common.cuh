// What every CUDA area needs around its kernels, once: checked CUDA calls
// and launches (a failure becomes a C++ exception, a RuntimeError in
// Python), streams as integers (cupy's stream pointers), launch sizing, warp
// reductions, and stream-ordered scratch memory. Every `.cu` file uses these
// and keeps no copy of its own. The shared C++ types and host/device formulas
// come from cpp/include/latentcore (common.hpp and the headers it names).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "latentcore/common.hpp"

namespace latentcore::cuda {

// ------------------------------------------------------------ checked calls

// Throws std::runtime_error naming `what` unless the CUDA call succeeded.
inline void check(cudaError_t status, const char* what) {
    if (status != cudaSuccess)
        throw std::runtime_error(std::string("latentcore CUDA ") + what + ": " + cudaGetErrorString(status));
}

// After a <<<...>>> launch: a bad configuration (too many blocks or threads,
// too much shared memory) is reported here, not at the next call.
inline void check_launch(const char* what) { check(cudaGetLastError(), what); }

// std::invalid_argument (ValueError in Python) unless ok.
inline void require(bool ok, const char* what) {
    if (!ok) throw std::invalid_argument(what);
}

inline cudaStream_t as_stream(std::uintptr_t stream) { return reinterpret_cast<cudaStream_t>(stream); }

// ------------------------------------------------------------ launch sizing

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;

// The most blocks any launch asks for: the grid's x limit. A kernel whose
// items can outnumber kMaxBlocks * threads per block loops grid-stride.
constexpr std::int64_t kMaxBlocks = 0x7fffffff;

// Blocks for `items` items at `per_block` items a block, at most kMaxBlocks.
inline unsigned blocks_for(std::int64_t items, std::int64_t per_block) {
    const std::int64_t blocks = (items + per_block - 1) / per_block;
    return static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

// ------------------------------------------------------------ warp reductions

// A butterfly over the warp: every lane ends with the same sum (so the warp
// can branch on it uniformly), in an order that depends on nothing but the
// lane assignment (deterministic). Call it from all 32 lanes.
template <typename T>
__device__ inline T warp_sum(T v) {
    for (int offset = kWarp / 2; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
    return v;
}

// ------------------------------------------------------------ scratch memory

// Rounds a byte count up to 256, the alignment of every scratch slice.
inline std::size_t aligned(std::size_t bytes) { return (bytes + 255) & ~static_cast<std::size_t>(255); }

// Stream-ordered scratch memory: allocated on the stream, freed on it when
// the owner goes out of scope (also on an exception), so later kernels on
// the stream still see it and nothing synchronizes.
class Scratch {
  public:
    Scratch(std::size_t bytes, cudaStream_t stream) : stream_(stream) {
        if (bytes > 0) check(cudaMallocAsync(&data_, bytes, stream), "scratch allocation");
    }
    ~Scratch() {
        if (data_) cudaFreeAsync(data_, stream_);
    }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;

    template <typename T>
    T* at(std::size_t offset) const {
        return reinterpret_cast<T*>(static_cast<char*>(data_) + offset);
    }

  private:
    void* data_ = nullptr;
    cudaStream_t stream_;
};

}  // namespace latentcore::cuda
