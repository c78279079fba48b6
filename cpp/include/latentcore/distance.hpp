// The exact distance of the k-NN re-ranking, shared by the C++ kernel
// (latentcore::exact_knn) and its CUDA twin (cuda::knn_finish): the same
// double accumulation in the same order on both sides, so the two devices
// report the same distances for the same candidates.
#pragma once

#include <cmath>

#include "latentcore/common.hpp"

namespace latentcore {

// The distance between rows a and b (dim floats each) under `metric`,
// accumulated in double: squared euclidean, euclidean, cosine distance
// (1 - cos, at least 0; 0 for a zero row) or the negated inner product.
// Inlined where it is called: the C++ kernel wraps it in a function of its
// own that is never inlined (see cpp/README.md, "Parallel regions").
LATENTCORE_HOST_DEVICE inline double exact_distance(const float* a, const float* b, size_type dim,
                                                    Metric metric) {
    if (metric == Metric::sqeuclidean || metric == Metric::euclidean) {
        double s = 0.0;
        for (size_type t = 0; t < dim; ++t) {
            const double diff = static_cast<double>(a[t]) - b[t];
            s += diff * diff;
        }
        return metric == Metric::euclidean ? std::sqrt(s) : s;
    }
    double ab = 0.0, aa = 0.0, bb = 0.0;
    for (size_type t = 0; t < dim; ++t) {
        ab += static_cast<double>(a[t]) * b[t];
        aa += static_cast<double>(a[t]) * a[t];
        bb += static_cast<double>(b[t]) * b[t];
    }
    if (metric == Metric::inner_product) return -ab;
    // max(0, d), with a NaN (a zero row) sent to 0 as std::max(0.0, d) does.
    const double d = 1.0 - ab / std::sqrt(aa * bb);
    return d > 0.0 ? d : 0.0;
}

}  // namespace latentcore
