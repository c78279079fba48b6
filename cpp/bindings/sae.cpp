// Binding of the TopK autoencoder kernels. python/latentcore/sae.py validates
// and orchestrates; here every size is checked against the others, every
// latent id against the decoder and every narrowing cast, so that no call
// leaves its arrays whatever Python hands it.
#include <cmath>
#include <cstdint>

#include "arrays.hpp"
#include "latentcore/sae.hpp"

namespace nb = nanobind;
using namespace latentcore;
using bindings::narrow;
using bindings::require;

namespace {

using Cpu = bindings::Arrays<nb::device::cpu>;

// Codes (batch, k) of latent ids in [-1, n_latents) with their values.
void require_codes(const Cpu::Mat<const index_t>& index, const Cpu::Mat<const float>& value, size_t n_latents) {
    require(value.shape(0) == index.shape(0) && value.shape(1) == index.shape(1),
            "index and value must have the same shape (batch, k)");
    const index_t* ids = index.data();
    const size_t n = index.shape(0) * index.shape(1);
    for (size_t e = 0; e < n; ++e)
        require(ids[e] >= -1 && static_cast<size_t>(ids[e] + 1) <= n_latents, "latent index out of range");
}

// Whether two arrays' memory does not overlap.
template <typename A, typename B>
bool disjoint(const A& a, const B& b) {
    const auto* a0 = reinterpret_cast<const char*>(a.data());
    const auto* b0 = reinterpret_cast<const char*>(b.data());
    return a.size() == 0 || b.size() == 0 || a0 + a.nbytes() <= b0 || b0 + b.nbytes() <= a0;
}

void encode_binding(Cpu::Mat<const float> x, Cpu::Mat<const float> weight, Cpu::Vec<const float> bias,
                    nb::capsule sgemm, Cpu::Mat<float> value, Cpu::Mat<index_t> index, int n_threads) {
    const size_t n = x.shape(0), n_latents = weight.shape(0), k = value.shape(1);
    require(weight.shape(1) == x.shape(1), "weight must be (n_latents, n_features) with X's n_features");
    require(x.shape(1) >= 1, "X needs at least one feature");
    require(bias.shape(0) == n_latents, "bias needs n_latents entries");
    require(k >= 1 && k <= n_latents, "k must be between 1 and n_latents");
    require(value.shape(0) == n && index.shape(0) == n && index.shape(1) == k, "value and index must be (n, k)");
    const int latents = narrow<int>(n_latents, "n_latents"), features = narrow<int>(x.shape(1), "n_features");
    for (size_t l = 0; l < n_latents; ++l) require(std::isfinite(bias.data()[l]), "bias must be finite");
    require(sgemm.data() != nullptr, "sgemm must hold a function");
    const auto gemm = reinterpret_cast<Sgemm>(sgemm.data());
    nb::gil_scoped_release release;
    topk_encode(x.data(), static_cast<size_type>(n), features, weight.data(), latents, bias.data(),
                static_cast<int>(k), gemm, value.data(), index.data(), n_threads);
}

void decode_binding(Cpu::Mat<const index_t> index, Cpu::Mat<const float> value, Cpu::Mat<const float> decoder,
                    Cpu::Vec<const float> bias, Cpu::Mat<float> out, int n_threads) {
    require_codes(index, value, decoder.shape(0));
    require(out.shape(0) == index.shape(0) && out.shape(1) == decoder.shape(1), "out must be (batch, n_features)");
    require(bias.shape(0) == 0 || bias.shape(0) == decoder.shape(1), "bias needs n_features entries, or none");
    const int k = narrow<int>(index.shape(1), "k"), features = narrow<int>(decoder.shape(1), "n_features");
    nb::gil_scoped_release release;
    sparse_decode(index.data(), value.data(), static_cast<size_type>(index.shape(0)), k, decoder.data(), features,
                  bias.shape(0) ? bias.data() : nullptr, out.data(), n_threads);
}

void backward_binding(Cpu::Mat<const index_t> index, Cpu::Mat<const float> value, Cpu::Mat<const float> grad_out,
                      Cpu::Mat<const float> x_centered, Cpu::Mat<const float> decoder, Cpu::Mat<float> grad_decoder,
                      Cpu::Mat<float> grad_encoder, Cpu::Vec<float> grad_encoder_bias, int n_threads) {
    const size_t n_latents = decoder.shape(0), n_features = decoder.shape(1), batch = index.shape(0);
    require_codes(index, value, n_latents);
    require(grad_out.shape(0) == batch && grad_out.shape(1) == n_features, "grad_out must be (batch, n_features)");
    require(x_centered.shape(0) == batch && x_centered.shape(1) == n_features,
            "x_centered must be (batch, n_features)");
    bindings::require_same_shape(grad_decoder, decoder, "grad_decoder must have the decoder's shape");
    bindings::require_same_shape(grad_encoder, decoder, "grad_encoder must have the decoder's shape");
    require(grad_encoder_bias.shape(0) == n_latents, "grad_encoder_bias needs n_latents entries");
    const int k = narrow<int>(index.shape(1), "k"), latents = narrow<int>(n_latents, "n_latents"),
              features = narrow<int>(n_features, "n_features");
    nb::gil_scoped_release release;
    sparse_decode_backward(index.data(), value.data(), static_cast<size_type>(batch), k, grad_out.data(),
                           x_centered.data(), decoder.data(), latents, features, grad_decoder.data(),
                           grad_encoder.data(), grad_encoder_bias.data(), n_threads);
}

void decode_error_binding(Cpu::Mat<const index_t> index, Cpu::Mat<const float> value, Cpu::Mat<const float> decoder,
                          Cpu::Vec<const float> bias, Cpu::Mat<const float> target, double scale,
                          Cpu::Mat<float> error, Cpu::Mat<float> grad_out, Cpu::Vec<double> sq_error,
                          int n_threads) {
    const size_t batch = index.shape(0), n_features = decoder.shape(1);
    require_codes(index, value, decoder.shape(0));
    require(bias.shape(0) == 0 || bias.shape(0) == n_features, "bias needs n_features entries, or none");
    require(target.shape(0) == batch && target.shape(1) == n_features, "target must be (batch, n_features)");
    bindings::require_same_shape(error, target, "error must be (batch, n_features)");
    bindings::require_same_shape(grad_out, target, "grad_out must be (batch, n_features)");
    require(sq_error.shape(0) == batch, "sq_error needs batch entries");
    require(std::isfinite(scale), "scale must be finite");
    // error is written row by row before target's row is read: no aliasing.
    require(disjoint(error, target) && disjoint(grad_out, target) && disjoint(error, grad_out) &&
                disjoint(error, decoder) && disjoint(grad_out, decoder),
            "error and grad_out must be arrays of their own");
    const int k = narrow<int>(index.shape(1), "k"), features = narrow<int>(n_features, "n_features");
    nb::gil_scoped_release release;
    decode_error(index.data(), value.data(), static_cast<size_type>(batch), k, decoder.data(), features,
                 bias.shape(0) ? bias.data() : nullptr, target.data(), scale, error.data(), grad_out.data(),
                 sq_error.data(), n_threads);
}

void update_latents_binding(Cpu::Mat<const index_t> index, Cpu::Mat<const float> value,
                            Cpu::Mat<const float> grad_out, Cpu::Mat<const index_t> aux_index,
                            Cpu::Mat<const float> aux_value, Cpu::Mat<const float> aux_grad_out,
                            Cpu::Mat<const float> x_centered,
                            Cpu::Mat<float> encoder, Cpu::Mat<float> encoder_first_moment,
                            Cpu::Mat<float> encoder_second_moment, Cpu::Vec<float> encoder_bias,
                            Cpu::Vec<float> encoder_bias_first_moment, Cpu::Vec<float> encoder_bias_second_moment,
                            Cpu::Mat<float> decoder, Cpu::Mat<float> decoder_first_moment,
                            Cpu::Mat<float> decoder_second_moment, Cpu::Vec<float> grad_pre_bias,
                            Cpu::Vec<float> norms, double learning_rate, double beta1, double beta2, double eps,
                            long long step, int n_threads) {
    const size_t n_latents = decoder.shape(0), n_features = decoder.shape(1), batch = index.shape(0);
    require_codes(index, value, n_latents);
    require_codes(aux_index, aux_value, n_latents);
    require(aux_index.shape(0) == batch, "aux_index must have index's batch rows");
    require(x_centered.shape(0) == batch && x_centered.shape(1) == n_features,
            "x_centered must be (batch, n_features)");
    bindings::require_same_shape(grad_out, x_centered, "grad_out must be (batch, n_features)");
    bindings::require_same_shape(aux_grad_out, x_centered, "aux_grad_out must be (batch, n_features)");
    for (const auto* m : {&encoder, &encoder_first_moment, &encoder_second_moment, &decoder_first_moment,
                          &decoder_second_moment})
        bindings::require_same_shape(*m, decoder, "the encoder, the decoder and their moments must be "
                                                  "(n_latents, n_features)");
    for (const auto* v : {&encoder_bias, &encoder_bias_first_moment, &encoder_bias_second_moment, &norms})
        require(v->shape(0) == n_latents, "encoder_bias, its moments and norms need n_latents entries");
    require(grad_pre_bias.shape(0) == n_features, "grad_pre_bias needs n_features entries");
    require(step >= 1, "step counts from 1");
    const int k = narrow<int>(index.shape(1), "k"), k_aux = narrow<int>(aux_index.shape(1), "k_aux"),
              latents = narrow<int>(n_latents, "n_latents"), features = narrow<int>(n_features, "n_features");
    nb::gil_scoped_release release;
    update_latents(index.data(), value.data(), grad_out.data(), k, aux_index.data(), aux_value.data(),
                   aux_grad_out.data(), k_aux, x_centered.data(), static_cast<size_type>(batch),
                   latents, features,
                   AdamSlot{encoder.data(), encoder_first_moment.data(), encoder_second_moment.data()},
                   AdamSlot{encoder_bias.data(), encoder_bias_first_moment.data(), encoder_bias_second_moment.data()},
                   AdamSlot{decoder.data(), decoder_first_moment.data(), decoder_second_moment.data()},
                   grad_pre_bias.data(), norms.data(), learning_rate, beta1, beta2, eps, step, n_threads);
}

void adam_binding(Cpu::Array<float> param, Cpu::Array<const float> grad, Cpu::Array<float> first_moment,
                  Cpu::Array<float> second_moment, double learning_rate, double beta1, double beta2, double eps,
                  long long step, int n_threads) {
    const size_t n = param.size();
    require(grad.size() == n && first_moment.size() == n && second_moment.size() == n,
            "grad and both moments must have the parameter's size");
    require(step >= 1, "step counts from 1");
    nb::gil_scoped_release release;
    adam_update(param.data(), grad.data(), first_moment.data(), second_moment.data(), static_cast<size_type>(n),
                learning_rate, beta1, beta2, eps, step, n_threads);
}

}  // namespace

void bind_sae(nb::module_& m) {
    // Outputs and in-place arrays are .noconvert() (see cpp/bindings/knn.cpp).
    m.def("sae_topk_encode", &encode_binding, nb::arg("x"), nb::arg("weight"), nb::arg("bias"), nb::arg("sgemm"),
          nb::arg("value").noconvert(), nb::arg("index").noconvert(), nb::arg("n_threads"));
    m.def("sae_sparse_decode", &decode_binding, nb::arg("index"), nb::arg("value"), nb::arg("decoder"),
          nb::arg("bias"), nb::arg("out").noconvert(), nb::arg("n_threads"));
    m.def("sae_sparse_decode_backward", &backward_binding, nb::arg("index"), nb::arg("value"), nb::arg("grad_out"),
          nb::arg("x_centered"), nb::arg("decoder"), nb::arg("grad_decoder").noconvert(),
          nb::arg("grad_encoder").noconvert(), nb::arg("grad_encoder_bias").noconvert(), nb::arg("n_threads"));
    m.def("sae_decode_error", &decode_error_binding, nb::arg("index"), nb::arg("value"), nb::arg("decoder"),
          nb::arg("bias"), nb::arg("target"), nb::arg("scale"), nb::arg("error").noconvert(),
          nb::arg("grad_out").noconvert(), nb::arg("sq_error").noconvert(), nb::arg("n_threads"));
    m.def("sae_update_latents", &update_latents_binding, nb::arg("index"), nb::arg("value"), nb::arg("grad_out"),
          nb::arg("aux_index"), nb::arg("aux_value"), nb::arg("aux_grad_out"), nb::arg("x_centered"), nb::arg("encoder").noconvert(),
          nb::arg("encoder_first_moment").noconvert(), nb::arg("encoder_second_moment").noconvert(),
          nb::arg("encoder_bias").noconvert(), nb::arg("encoder_bias_first_moment").noconvert(),
          nb::arg("encoder_bias_second_moment").noconvert(), nb::arg("decoder").noconvert(),
          nb::arg("decoder_first_moment").noconvert(), nb::arg("decoder_second_moment").noconvert(),
          nb::arg("grad_pre_bias").noconvert(), nb::arg("norms").noconvert(), nb::arg("learning_rate"),
          nb::arg("beta1"), nb::arg("beta2"), nb::arg("eps"), nb::arg("step"), nb::arg("n_threads"));
    m.def("sae_adam_update", &adam_binding, nb::arg("param").noconvert(), nb::arg("grad"),
          nb::arg("first_moment").noconvert(), nb::arg("second_moment").noconvert(), nb::arg("learning_rate"),
          nb::arg("beta1"), nb::arg("beta2"), nb::arg("eps"), nb::arg("step"), nb::arg("n_threads"));
}
