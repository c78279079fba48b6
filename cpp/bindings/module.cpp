// latentcore._core: the CPU kernels. Each area registers its functions from its
// own file; this one only assembles the module.
#include <nanobind/nanobind.h>

namespace nb = nanobind;

void bind_knn(nb::module_& m);
void bind_tsne(nb::module_& m);
void bind_walks(nb::module_& m);
void bind_sgns(nb::module_& m);
void bind_sparse(nb::module_& m);
void bind_sae(nb::module_& m);

NB_MODULE(_core, m) {
    m.doc() = "latentcore CPU kernels (private: use the latentcore package)";
    bind_knn(m);
    bind_tsne(m);
    bind_walks(m);
    bind_sgns(m);
    bind_sparse(m);
    bind_sae(m);
}
