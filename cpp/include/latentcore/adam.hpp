// One Adam step (Kingma & Ba 2015), shared by the C++ kernels
// (latentcore::adam_update, latentcore::update_latents) and their CUDA twins:
// the bias corrections folded into the step size and eps once per call on the
// host, in double, as PyTorch folds them, and the same elementwise update on
// both sides.
#pragma once

#include <cmath>

#include "latentcore/common.hpp"

namespace latentcore {

struct AdamStep {
    float b1, b2;     // the moments' decay rates
    float step_size;  // learning_rate / (1 - beta1^step)
    float root2;      // sqrt(1 - beta2^step)
    float eps;

    // The step for `step` (counted from 1). Host only: one per call.
    static AdamStep make(double learning_rate, double beta1, double beta2, double eps, long long step) {
        const double correction1 = 1.0 - std::pow(beta1, static_cast<double>(step));
        const double correction2 = 1.0 - std::pow(beta2, static_cast<double>(step));
        return AdamStep{static_cast<float>(beta1), static_cast<float>(beta2),
                        static_cast<float>(learning_rate / correction1),
                        static_cast<float>(std::sqrt(correction2)), static_cast<float>(eps)};
    }

    // One parameter: its moments updated with gradient g, then the parameter.
    // (On the GPU, and in the CPU's AVX2 clone, products may fuse into sums:
    // the devices agree to float rounding, not bit for bit. The C++ kernels
    // are built with -fno-math-errno, so that loops around sqrtf vectorize.)
    LATENTCORE_HOST_DEVICE void apply(float& param, float g, float& first_moment, float& second_moment) const {
        const float m = b1 * first_moment + (1.0f - b1) * g;
        const float v = b2 * second_moment + (1.0f - b2) * g * g;
        first_moment = m;
        second_moment = v;
        param -= step_size * m / (sqrtf(v) / root2 + eps);
    }
};

}  // namespace latentcore
