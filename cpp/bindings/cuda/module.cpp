// latentcore._cuda: the CUDA kernels, mirroring latentcore._core area by area.
// Importing it needs no GPU: the CUDA runtime is linked statically and
// nothing touches a device until a kernel is called.
#include <nanobind/nanobind.h>

namespace nb = nanobind;

void bind_knn(nb::module_& m);
void bind_tsne(nb::module_& m);
void bind_walks(nb::module_& m);
void bind_sgns(nb::module_& m);
void bind_sae(nb::module_& m);

NB_MODULE(_cuda, m) {
    m.doc() = "latentcore CUDA kernels (private: use the latentcore package)";
    bind_knn(m);
    bind_tsne(m);
    bind_walks(m);
    bind_sgns(m);
    bind_sae(m);
}
