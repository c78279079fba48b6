// The interpolation grid of FFT-accelerated t-SNE (FIt-SNE, Linderman et al.
// 2019), shared by the C++ kernels (latentcore::scatter_charges,
// gather_potentials) and their CUDA twins: the grid, the box of a point,
// where the point sits in its box, and the Lagrange weights of the box's
// nodes, computed with the same roundings on both sides (every product and
// sum rounded alone: mul_rn, sub_rn, div_rn), so both devices interpolate
// with the same weights bit for bit.
#pragma once

#include <cmath>

#include "latentcore/common.hpp"

namespace latentcore {

// Interpolation nodes per box and dimension, at most.
constexpr int kMaxInterp = 16;

// An equispaced interpolation grid over the cube [lower, lower + n_boxes *
// box_width]^dim: each box holds n_interp nodes per dimension at offsets
// (m + 1/2) / n_interp of its width, so the whole grid has spacing
// box_width / n_interp and (n_boxes * n_interp)^dim nodes, row-major
// (dimension 0 slowest).
struct InterpGrid {
    int dim;
    int n_boxes;
    int n_interp;
    double lower;
    double box_width;

    // (n_boxes * n_interp)^dim.
    LATENTCORE_HOST_DEVICE size_type nodes() const {
        size_type n = 1;
        for (int d = 0; d < dim; ++d) n *= static_cast<size_type>(n_boxes) * n_interp;
        return n;
    }

    // n_boxes^dim.
    LATENTCORE_HOST_DEVICE size_type boxes() const {
        size_type n = 1;
        for (int d = 0; d < dim; ++d) n *= n_boxes;
        return n;
    }

    // The box of coordinate y along any dimension. Clamped before the
    // conversion to int, so huge coordinates stay defined; fmax sends NaN to
    // box 0: any input lands in some box.
    LATENTCORE_HOST_DEVICE int box_of(double y) const {
        const double box = std::floor(div_rn(sub_rn(y, lower), box_width));
        return static_cast<int>(std::fmin(std::fmax(box, 0.0), static_cast<double>(n_boxes - 1)));
    }

    // Where y sits inside box `box`, in units of the box width.
    LATENTCORE_HOST_DEVICE double offset_in(double y, int box) const {
        return sub_rn(div_rn(sub_rn(y, lower), box_width), static_cast<double>(box));
    }
};

// The Lagrange basis over the nodes (m + 1/2) / p of the unit interval, with
// its denominators computed once (on the host: the CUDA kernels take it by
// value) rather than per point.
struct LagrangeBasis {
    int p;
    double node[kMaxInterp];
    double inv_denominator[kMaxInterp];

    LATENTCORE_HOST_DEVICE explicit LagrangeBasis(int p_) : p(p_) {
        for (int m = 0; m < p; ++m) node[m] = (m + 0.5) / p;
        for (int m = 0; m < p; ++m) {
            double d = 1.0;
            for (int o = 0; o < p; ++o)
                if (o != m) d = mul_rn(d, sub_rn(node[m], node[o]));
            inv_denominator[m] = 1.0 / d;
        }
    }

    // w[m] = the weight of node m at t in [0, 1] (the point's offset in its box).
    LATENTCORE_HOST_DEVICE void weights(double t, double* w) const {
        for (int m = 0; m < p; ++m) {
            double v = inv_denominator[m];
            for (int o = 0; o < p; ++o)
                if (o != m) v = mul_rn(v, sub_rn(t, node[o]));
            w[m] = v;
        }
    }
};

}  // namespace latentcore
