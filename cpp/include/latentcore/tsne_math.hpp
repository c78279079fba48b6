// The per-pair and per-coordinate formulas of t-SNE, shared by the C++
// kernels (cpp/src/tsne.cpp) and their CUDA twins (cuda/tsne.cu). The t-SNE
// kernel with `dof` degrees of freedom (Kobak et al. 2019) is
// w(d^2) = (1 + d^2 / dof)^-dof; dof = 1 is the Cauchy kernel of t-SNE.
#pragma once

#include <cmath>

#include "latentcore/common.hpp"

namespace latentcore {

// w^(1/dof) = 1 / (1 + d^2 / dof): the factor every force carries.
LATENTCORE_HOST_DEVICE inline double cauchy_factor(double sq_dist, double dof) {
    return 1.0 / (1.0 + sq_dist / dof);
}

// w = factor^dof, from cauchy_factor.
LATENTCORE_HOST_DEVICE inline double tsne_kernel(double factor, double dof) {
    return dof == 1.0 ? factor : std::pow(factor, dof);
}

// p w^(1/dof): an edge's attractive weight, for affinity p at squared distance sq_dist.
LATENTCORE_HOST_DEVICE inline double attraction(double p, double sq_dist, double dof) {
    return p / (1.0 + sq_dist / dof);
}

// p log(p / w): an edge's term of the KL divergence less log Z (p > 0).
LATENTCORE_HOST_DEVICE inline double kl_term(double p, double sq_dist, double dof) {
    return p * (std::log(p) + dof * std::log1p(sq_dist / dof));
}

LATENTCORE_HOST_DEVICE inline int sign_of(double x) { return (x > 0) - (x < 0); }

// One coordinate of gradient descent with momentum and per-coordinate gains
// (delta-bar-delta, as openTSNE and FIt-SNE): the gain grows by 0.2 where the
// gradient turned against the last update, shrinks by 0.8 (+ min_gain) where
// it kept its sign; update = momentum * update - learning_rate * gain *
// gradient; y += update. Every product and sum rounded alone on both devices.
LATENTCORE_HOST_DEVICE inline void descend(double& y, double gradient, double& update, double& gain,
                                           double learning_rate, double momentum, double min_gain) {
    gain = sign_of(update) != sign_of(gradient) ? add_rn(gain, 0.2) : add_rn(mul_rn(gain, 0.8), min_gain);
    update = sub_rn(mul_rn(momentum, update), mul_rn(mul_rn(learning_rate, gain), gradient));
    y = add_rn(y, update);
}

}  // namespace latentcore
