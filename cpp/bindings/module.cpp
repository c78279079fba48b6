// latentcore._core: the CPU kernels. Each area registers its functions from its
// own file; this one only assembles the module.
#include <nanobind/nanobind.h>

#include "latentcore/parallel.hpp"

namespace nb = nanobind;

void bind_knn(nb::module_& m);
void bind_tsne(nb::module_& m);
void bind_walks(nb::module_& m);
void bind_sgns(nb::module_& m);
void bind_sparse(nb::module_& m);
void bind_sae(nb::module_& m);

namespace {

// The kernels' stop check: runs Python's signal handlers, so Ctrl-C (or any
// handler that raises) ends a kernel with the exception the handler raised.
// Only the main thread runs handlers; elsewhere this costs a GIL round trip.
bool python_signal_raised() {
    nb::gil_scoped_acquire hold;
    return PyErr_CheckSignals() != 0;
}

}  // namespace

NB_MODULE(_core, m) {
    m.doc() = "latentcore CPU kernels (private: use the latentcore package)";
    latentcore::set_stop_check(&python_signal_raised);
    // The handler's exception is already set when a kernel reports Interrupted.
    nb::register_exception_translator([](const std::exception_ptr& error, void*) {
        try {
            std::rethrow_exception(error);
        } catch (const latentcore::Interrupted&) {
            if (!PyErr_Occurred()) PyErr_SetNone(PyExc_KeyboardInterrupt);
        }
    });
    bind_knn(m);
    bind_tsne(m);
    bind_walks(m);
    bind_sgns(m);
    bind_sparse(m);
    bind_sae(m);
}
