// The array types every binding declares, for either device: the dtype, rank,
// C order and device are part of the type, so nanobind rejects anything else
// before our code runs (numpy, cupy and torch all arrive through DLPack).
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace latentcore::bindings {

namespace nb = nanobind;

template <typename Device>
struct Arrays {
    template <typename T, typename... Extra>
    using Array = nb::ndarray<T, nb::c_contig, Device, Extra...>;
    using Matrix = Array<const float, nb::ndim<2>>;
    using Vector = Array<const float, nb::ndim<1>>;
    using ScoreRows = Array<float, nb::ndim<2>>;
    using IndexRows = Array<std::int32_t, nb::ndim<2>>;
};

// Size checks that keep a kernel inside its arrays; they surface as ValueError.
inline void require(bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument(what);
}

}  // namespace latentcore::bindings
