// What every CUDA area needs around its launches: every CUDA call and launch
// is checked (a failure becomes a C++ exception, a RuntimeError in Python),
// and streams cross the bindings as integers (cupy's stream pointers).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace latentcore::cuda {

inline void check(cudaError_t status, const char* what) {
    if (status != cudaSuccess)
        throw std::runtime_error(std::string("latentcore CUDA ") + what + ": " + cudaGetErrorString(status));
}

inline cudaStream_t as_stream(std::uintptr_t stream) { return reinterpret_cast<cudaStream_t>(stream); }

}  // namespace latentcore::cuda
