// The array types every binding declares, for either device: the dtype, rank,
// C order and device are part of the type, so nanobind rejects anything else
// before our code runs (numpy, cupy and torch all arrive through DLPack).
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace latentcore::bindings {

namespace nb = nanobind;

template <typename Device>
struct Arrays {
    template <typename T, typename... Extra>
    using Array = nb::ndarray<T, nb::c_contig, Device, Extra...>;
    template <typename T>
    using Vec = Array<T, nb::ndim<1>>;
    template <typename T>
    using Mat = Array<T, nb::ndim<2>>;
    using Matrix = Array<const float, nb::ndim<2>>;
    using Vector = Array<const float, nb::ndim<1>>;
    using ScoreRows = Array<float, nb::ndim<2>>;
    using IndexRows = Array<std::int32_t, nb::ndim<2>>;
};

// Size checks that keep a kernel inside its arrays; they surface as ValueError.
// A literal message stays a pointer until a check fails: the checks run once
// per edge or per walk token, where building a std::string each time would
// cost more than the kernel.
inline void require(bool ok, const char* what) {
    if (!ok) throw std::invalid_argument(what);
}
inline void require(bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument(what);
}

// A size or index narrowed to the type a kernel takes (int for BLAS and for
// per-row counts, int32 for ids): out of that type's range it is a ValueError
// naming `what`, never a wrapped value.
template <typename To, typename From>
To narrow(From value, const char* what) {
    static_assert(std::is_integral_v<To> && std::is_integral_v<From>);
    using Wide = std::conditional_t<std::is_signed_v<From>, long long, unsigned long long>;
    const Wide v = static_cast<Wide>(value);
    const bool fits = std::is_signed_v<From>
                          ? (static_cast<long long>(v) >= static_cast<long long>(std::numeric_limits<To>::min()) &&
                             static_cast<long long>(v) <= static_cast<long long>(std::numeric_limits<To>::max()))
                          : static_cast<unsigned long long>(v) <=
                                static_cast<unsigned long long>(std::numeric_limits<To>::max());
    if (!fits) throw std::invalid_argument(std::string(what) + " is out of range for the kernel");
    return static_cast<To>(value);
}

// An embedding (n, dim) has 1, 2 or 3 columns.
template <typename A>
int embedding_dim(const A& Y) {
    require(Y.shape(1) >= 1 && Y.shape(1) <= 3, "embeddings have 1, 2 or 3 columns");
    return static_cast<int>(Y.shape(1));
}

template <typename A, typename B>
void require_same_device(const A& a, const B& b) {
    require(a.device_id() == b.device_id(), "all arrays must be on one GPU");
}

template <typename A, typename B>
void require_same_shape(const A& a, const B& b, const char* what) {
    require(a.shape(0) == b.shape(0) && a.shape(1) == b.shape(1), what);
}

}  // namespace latentcore::bindings
