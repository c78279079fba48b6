// Binding of the CUDA TopK autoencoder kernels (cuda/sae.cuh), the twins of
// latentcore._core.sae_* with `stream` (cupy's current stream as an integer)
// in place of n_threads; each call is queued on that stream and returns None.
// Arrays are cupy (or any DLPack CUDA) arrays on one GPU. Only shapes are
// checked here: latent ids are not range-checked (that would need a device
// copy; python/latentcore/sae.py validates the codes), and instead the
// kernels skip any id outside [0, n_latents), so no call can touch memory out
// of bounds. The GIL is released while the kernels are queued.
#include <cmath>
#include <cstdint>

#include "../arrays.hpp"
#include "sae.cuh"

namespace nb = nanobind;

namespace {

using latentcore::bindings::require;
using latentcore::bindings::require_same_device;
using Gpu = latentcore::bindings::Arrays<nb::device::cuda>;

// Codes (batch, k) of latent ids with their values, on the decoder's GPU.
template <typename Decoder>
void require_codes(const Gpu::Mat<const std::int32_t>& index, const Gpu::Mat<const float>& value,
                   const Decoder& decoder) {
    require(value.shape(0) == index.shape(0) && value.shape(1) == index.shape(1),
            "index and value must have the same shape (batch, k)");
    require(index.shape(1) <= INT32_MAX, "at most 2^31 - 1 codes per row");
    require(decoder.shape(0) <= INT32_MAX && decoder.shape(1) <= INT32_MAX,
            "at most 2^31 - 1 latents and features");
    require_same_device(index, decoder);
    require_same_device(value, decoder);
}

void decode_binding(Gpu::Mat<const std::int32_t> index, Gpu::Mat<const float> value,
                    Gpu::Mat<const float> decoder, Gpu::Vec<const float> bias, Gpu::Mat<float> out,
                    std::uintptr_t stream) {
    require_codes(index, value, decoder);
    require(out.shape(0) == index.shape(0) && out.shape(1) == decoder.shape(1), "out must be (batch, n_features)");
    require(bias.shape(0) == 0 || bias.shape(0) == decoder.shape(1), "bias needs n_features entries, or none");
    if (bias.shape(0)) require_same_device(bias, decoder);
    require_same_device(out, decoder);
    nb::gil_scoped_release release;
    latentcore::cuda::sparse_decode(index.data(), value.data(), static_cast<std::int64_t>(index.shape(0)),
                                    static_cast<int>(index.shape(1)), decoder.data(),
                                    static_cast<int>(decoder.shape(0)), static_cast<int>(decoder.shape(1)),
                                    bias.shape(0) ? bias.data() : nullptr, out.data(), stream);
}

void backward_binding(Gpu::Mat<const std::int32_t> index, Gpu::Mat<const float> value,
                      Gpu::Mat<const float> grad_out, Gpu::Mat<const float> x_centered,
                      Gpu::Mat<const float> decoder, Gpu::Mat<float> grad_decoder, Gpu::Mat<float> grad_encoder,
                      Gpu::Vec<float> grad_encoder_bias, std::uintptr_t stream) {
    const size_t n_latents = decoder.shape(0), n_features = decoder.shape(1), batch = index.shape(0);
    require_codes(index, value, decoder);
    require(grad_out.shape(0) == batch && grad_out.shape(1) == n_features, "grad_out must be (batch, n_features)");
    require(x_centered.shape(0) == batch && x_centered.shape(1) == n_features,
            "x_centered must be (batch, n_features)");
    latentcore::bindings::require_same_shape(grad_decoder, decoder, "grad_decoder must have the decoder's shape");
    latentcore::bindings::require_same_shape(grad_encoder, decoder, "grad_encoder must have the decoder's shape");
    require(grad_encoder_bias.shape(0) == n_latents, "grad_encoder_bias needs n_latents entries");
    require_same_device(grad_out, decoder);
    require_same_device(x_centered, decoder);
    require_same_device(grad_decoder, decoder);
    require_same_device(grad_encoder, decoder);
    require_same_device(grad_encoder_bias, decoder);
    nb::gil_scoped_release release;
    latentcore::cuda::sparse_decode_backward(
        index.data(), value.data(), static_cast<std::int64_t>(batch), static_cast<int>(index.shape(1)),
        grad_out.data(), x_centered.data(), decoder.data(), static_cast<int>(n_latents),
        static_cast<int>(n_features), grad_decoder.data(), grad_encoder.data(), grad_encoder_bias.data(), stream);
}

// Whether two arrays' memory does not overlap.
template <typename A, typename B>
bool disjoint(const A& a, const B& b) {
    const auto* a0 = reinterpret_cast<const char*>(a.data());
    const auto* b0 = reinterpret_cast<const char*>(b.data());
    return a.size() == 0 || b.size() == 0 || a0 + a.nbytes() <= b0 || b0 + b.nbytes() <= a0;
}

void decode_error_binding(Gpu::Mat<const std::int32_t> index, Gpu::Mat<const float> value,
                          Gpu::Mat<const float> decoder, Gpu::Vec<const float> bias, Gpu::Mat<const float> target,
                          double scale, Gpu::Mat<float> error, Gpu::Mat<float> grad_out, Gpu::Vec<double> sq_error,
                          std::uintptr_t stream) {
    const size_t batch = index.shape(0), n_features = decoder.shape(1);
    require_codes(index, value, decoder);
    require(bias.shape(0) == 0 || bias.shape(0) == n_features, "bias needs n_features entries, or none");
    require(target.shape(0) == batch && target.shape(1) == n_features, "target must be (batch, n_features)");
    latentcore::bindings::require_same_shape(error, target, "error must be (batch, n_features)");
    latentcore::bindings::require_same_shape(grad_out, target, "grad_out must be (batch, n_features)");
    require(sq_error.shape(0) == batch, "sq_error needs batch entries");
    require(std::isfinite(scale), "scale must be finite");
    require(disjoint(error, target) && disjoint(grad_out, target) && disjoint(error, grad_out) &&
                disjoint(error, decoder) && disjoint(grad_out, decoder),
            "error and grad_out must be arrays of their own");
    if (bias.shape(0)) require_same_device(bias, decoder);
    require_same_device(target, decoder);
    require_same_device(error, decoder);
    require_same_device(grad_out, decoder);
    require_same_device(sq_error, decoder);
    nb::gil_scoped_release release;
    latentcore::cuda::decode_error(index.data(), value.data(), static_cast<std::int64_t>(batch),
                                   static_cast<int>(index.shape(1)), decoder.data(),
                                   static_cast<int>(decoder.shape(0)), static_cast<int>(n_features),
                                   bias.shape(0) ? bias.data() : nullptr, target.data(), scale, error.data(),
                                   grad_out.data(), sq_error.data(), stream);
}

void update_latents_binding(Gpu::Mat<const std::int32_t> index, Gpu::Mat<const float> value,
                            Gpu::Mat<const float> grad_out, Gpu::Mat<const std::int32_t> aux_index,
                            Gpu::Mat<const float> aux_value, Gpu::Mat<const float> aux_grad_out,
                            Gpu::Mat<const float> x_centered, Gpu::Mat<float> encoder,
                            Gpu::Mat<float> encoder_first_moment, Gpu::Mat<float> encoder_second_moment,
                            Gpu::Vec<float> encoder_bias, Gpu::Vec<float> encoder_bias_first_moment,
                            Gpu::Vec<float> encoder_bias_second_moment, Gpu::Mat<float> decoder,
                            Gpu::Mat<float> decoder_first_moment, Gpu::Mat<float> decoder_second_moment,
                            Gpu::Vec<float> grad_pre_bias, Gpu::Vec<float> norms, double learning_rate, double beta1,
                            double beta2, double eps, long long step, std::uintptr_t stream) {
    using latentcore::bindings::require_same_shape;
    const size_t n_latents = decoder.shape(0), n_features = decoder.shape(1), batch = index.shape(0);
    require_codes(index, value, decoder);
    require_codes(aux_index, aux_value, decoder);
    require(aux_index.shape(0) == batch, "aux_index must have index's batch rows");
    require(x_centered.shape(0) == batch && x_centered.shape(1) == n_features,
            "x_centered must be (batch, n_features)");
    require_same_shape(grad_out, x_centered, "grad_out must be (batch, n_features)");
    require_same_shape(aux_grad_out, x_centered, "aux_grad_out must be (batch, n_features)");
    for (const auto* m : {&encoder, &encoder_first_moment, &encoder_second_moment, &decoder_first_moment,
                          &decoder_second_moment})
        require_same_shape(*m, decoder, "the encoder, the decoder and their moments must be (n_latents, n_features)");
    for (const auto* v : {&encoder_bias, &encoder_bias_first_moment, &encoder_bias_second_moment, &norms})
        require(v->shape(0) == n_latents, "encoder_bias, its moments and norms need n_latents entries");
    require(grad_pre_bias.shape(0) == n_features, "grad_pre_bias needs n_features entries");
    require(step >= 1, "step counts from 1");
    for (const auto* m : {&grad_out, &aux_grad_out, &x_centered}) require_same_device(*m, decoder);
    for (const auto* m : {&encoder, &encoder_first_moment, &encoder_second_moment, &decoder_first_moment,
                          &decoder_second_moment})
        require_same_device(*m, decoder);
    for (const auto* v : {&encoder_bias, &encoder_bias_first_moment, &encoder_bias_second_moment, &norms,
                          &grad_pre_bias})
        require_same_device(*v, decoder);
    nb::gil_scoped_release release;
    latentcore::cuda::update_latents(
        index.data(), value.data(), grad_out.data(), static_cast<int>(index.shape(1)), aux_index.data(),
        aux_value.data(), aux_grad_out.data(), static_cast<int>(aux_index.shape(1)), x_centered.data(),
        static_cast<std::int64_t>(batch), static_cast<int>(n_latents), static_cast<int>(n_features),
        latentcore::cuda::AdamSlot{encoder.data(), encoder_first_moment.data(), encoder_second_moment.data()},
        latentcore::cuda::AdamSlot{encoder_bias.data(), encoder_bias_first_moment.data(),
                                   encoder_bias_second_moment.data()},
        latentcore::cuda::AdamSlot{decoder.data(), decoder_first_moment.data(), decoder_second_moment.data()},
        grad_pre_bias.data(), norms.data(), learning_rate, beta1, beta2, eps, step, stream);
}

void adam_binding(Gpu::Array<float> param, Gpu::Array<const float> grad, Gpu::Array<float> first_moment,
                  Gpu::Array<float> second_moment, double learning_rate, double beta1, double beta2, double eps,
                  long long step, std::uintptr_t stream) {
    const size_t n = param.size();
    require(grad.size() == n && first_moment.size() == n && second_moment.size() == n,
            "grad and both moments must have the parameter's size");
    require(step >= 1, "step counts from 1");
    if (n) {
        require_same_device(grad, param);
        require_same_device(first_moment, param);
        require_same_device(second_moment, param);
    }
    nb::gil_scoped_release release;
    latentcore::cuda::adam_update(param.data(), grad.data(), first_moment.data(), second_moment.data(),
                                  static_cast<std::int64_t>(n), learning_rate, beta1, beta2, eps, step, stream);
}

}  // namespace

void bind_sae(nb::module_& m) {
    // Outputs and in-place arrays are .noconvert() (see cpp/bindings/knn.cpp).
    m.def("sae_sparse_decode", &decode_binding, nb::arg("index"), nb::arg("value"), nb::arg("decoder"),
          nb::arg("bias"), nb::arg("out").noconvert(), nb::arg("stream"));
    m.def("sae_sparse_decode_backward", &backward_binding, nb::arg("index"), nb::arg("value"), nb::arg("grad_out"),
          nb::arg("x_centered"), nb::arg("decoder"), nb::arg("grad_decoder").noconvert(),
          nb::arg("grad_encoder").noconvert(), nb::arg("grad_encoder_bias").noconvert(), nb::arg("stream"));
    m.def("sae_decode_error", &decode_error_binding, nb::arg("index"), nb::arg("value"), nb::arg("decoder"),
          nb::arg("bias"), nb::arg("target"), nb::arg("scale"), nb::arg("error").noconvert(),
          nb::arg("grad_out").noconvert(), nb::arg("sq_error").noconvert(), nb::arg("stream"));
    m.def("sae_update_latents", &update_latents_binding, nb::arg("index"), nb::arg("value"), nb::arg("grad_out"),
          nb::arg("aux_index"), nb::arg("aux_value"), nb::arg("aux_grad_out"), nb::arg("x_centered"),
          nb::arg("encoder").noconvert(), nb::arg("encoder_first_moment").noconvert(),
          nb::arg("encoder_second_moment").noconvert(), nb::arg("encoder_bias").noconvert(),
          nb::arg("encoder_bias_first_moment").noconvert(), nb::arg("encoder_bias_second_moment").noconvert(),
          nb::arg("decoder").noconvert(), nb::arg("decoder_first_moment").noconvert(),
          nb::arg("decoder_second_moment").noconvert(), nb::arg("grad_pre_bias").noconvert(),
          nb::arg("norms").noconvert(), nb::arg("learning_rate"), nb::arg("beta1"), nb::arg("beta2"),
          nb::arg("eps"), nb::arg("step"), nb::arg("stream"));
    m.def("sae_adam_update", &adam_binding, nb::arg("param").noconvert(), nb::arg("grad"),
          nb::arg("first_moment").noconvert(), nb::arg("second_moment").noconvert(), nb::arg("learning_rate"),
          nb::arg("beta1"), nb::arg("beta2"), nb::arg("eps"), nb::arg("step"), nb::arg("stream"));
}
