// Random streams and alias-table draws shared by the C++ and CUDA kernels:
// the same arithmetic on both sides, so a seed gives the same walks and the
// same negative samples on the CPU and the GPU. Plain C++ (no CUDA header);
// under nvcc the functions are also compiled for the device.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define LATENTCORE_HOST_DEVICE __host__ __device__
#else
#define LATENTCORE_HOST_DEVICE
#endif

namespace latentcore {

LATENTCORE_HOST_DEVICE inline std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// xoshiro256**, one stream per work item (a walk), seeded through splitmix64
// from (seed, stream): independent streams whatever thread runs the item.
struct Rng {
    std::uint64_t s[4];

    Rng() = default;  // unseeded: assign a seeded one before drawing
    LATENTCORE_HOST_DEVICE Rng(std::uint64_t seed, std::uint64_t stream) {
        std::uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);
        for (auto& v : s) v = splitmix64(x);
    }

    LATENTCORE_HOST_DEVICE static std::uint64_t rotl(std::uint64_t x, int k) {
        return (x << k) | (x >> (64 - k));
    }

    LATENTCORE_HOST_DEVICE std::uint64_t next() {
        const std::uint64_t result = rotl(s[1] * 5, 7) * 9;
        const std::uint64_t t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rotl(s[3], 45);
        return result;
    }

    // Uniform in [0, 1) with 53 random bits.
    LATENTCORE_HOST_DEVICE double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

    // Uniform in [0, n) for n < 2^32, by multiply-shift on 32 random bits.
    LATENTCORE_HOST_DEVICE std::uint32_t below(std::uint32_t n) {
        return static_cast<std::uint32_t>(((next() >> 32) * n) >> 32);
    }
};

// One draw from an alias table over `count` (< 2^31) outcomes stored at
// keep[0..count) and alias[0..count): outcome t keeps itself with
// probability keep[t], else becomes alias[t]. One 64-bit draw serves both
// choices: the high half picks the slot, the low half tosses its coin.
LATENTCORE_HOST_DEVICE inline std::int64_t alias_draw(const float* keep, const std::int32_t* alias,
                                                      std::int64_t count, std::uint64_t r) {
    const std::int64_t t =
        static_cast<std::int64_t>(((r >> 32) * static_cast<std::uint64_t>(count)) >> 32);
    return static_cast<double>(r & 0xffffffffULL) * 0x1.0p-32 < keep[t] ? t : alias[t];
}

}  // namespace latentcore
