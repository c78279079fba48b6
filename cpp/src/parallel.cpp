#include "latentcore/parallel.hpp"

namespace latentcore {

namespace {
std::atomic<StopCheck> installed_check{nullptr};
}

void set_stop_check(StopCheck check) { installed_check.store(check); }

StopCheck stop_check() { return installed_check.load(); }

}  // namespace latentcore
