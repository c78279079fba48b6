// The host-only OpenMP helpers: the thread count of a call, and how a long
// kernel stops early, in one place: on Ctrl-C, and when one of its
// threads fails. An exception may not leave an OpenMP region (the runtime can
// only terminate the process), so every parallel item runs through
// ParallelWork::run, which keeps the first exception and stops the rest; the
// kernel calls finish() after the region, which rethrows it. Ctrl-C reaches
// C++ through the stop check that the Python module installs: the thread that
// started the kernel (OpenMP thread 0) polls it at most every kPollInterval,
// and every thread skips its remaining items once the work has stopped.
#pragma once

#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <thread>

#include <omp.h>

#include "latentcore/common.hpp"

namespace latentcore {

// Thread count for one kernel call: n_threads <= 0 means "all OpenMP threads".
inline int resolve_threads(int n_threads) {
    return n_threads > 0 ? n_threads : omp_get_max_threads();
}

// Thrown by finish() when the stop check asked the kernel to end; the Python
// bindings turn it into the KeyboardInterrupt that the check raised.
struct Interrupted : std::exception {
    const char* what() const noexcept override { return "interrupted"; }
};

// Returns true when the kernel should stop (Python: a signal handler raised).
// Null, the default, never stops: plain C++ programs such as bench/cpp.
using StopCheck = bool (*)();
void set_stop_check(StopCheck check);
StopCheck stop_check();

class ParallelWork {
  public:
    static constexpr std::chrono::milliseconds kPollInterval{20};

    ParallelWork() : check_(stop_check()), last_poll_(std::chrono::steady_clock::now()) {}
    ParallelWork(const ParallelWork&) = delete;
    ParallelWork& operator=(const ParallelWork&) = delete;

    // True once the work should end. Cheap enough to call per item: other
    // threads read one atomic; thread 0 also reads the clock.
    bool stopped() {
        if (stop_.load(std::memory_order_relaxed)) return true;
        if (check_ && omp_get_thread_num() == 0) {
            const auto now = std::chrono::steady_clock::now();
            if (now - last_poll_ >= kPollInterval) {
                last_poll_ = now;
                if (check_()) {
                    interrupted_ = true;
                    stop_.store(true, std::memory_order_relaxed);
                }
            }
        }
        return stop_.load(std::memory_order_relaxed);
    }

    // Runs item() unless the work has stopped; an exception it throws is kept
    // for finish() and stops the work. Returns false when item() did not run
    // to its end.
    template <typename Item>
    bool run(Item&& item) noexcept {
        if (stopped()) return false;
        try {
            item();
            return true;
        } catch (...) {
            fail(std::current_exception());
            return false;
        }
    }

    // Ends a thread's part of the region, after its last `omp for nowait`:
    // thread 0 keeps polling until every thread of the team has arrived, so a
    // long item on another thread (one LASSO signal may sweep for minutes)
    // still sees Ctrl-C through stopped(), which that item polls. Once per
    // thread, in the one parallel region this ParallelWork serves.
    void leave_region() {
        team_done_.fetch_add(1, std::memory_order_acq_rel);
        if (omp_get_thread_num() != 0) return;
        const int team = omp_get_num_threads();
        while (team_done_.load(std::memory_order_acquire) < team) {
            stopped();
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
    }

    void fail(std::exception_ptr error) noexcept {
        std::lock_guard<std::mutex> hold(mutex_);
        if (!error_) error_ = error;
        stop_.store(true, std::memory_order_relaxed);
    }

    // After the parallel region: rethrows the first exception of any thread,
    // or throws Interrupted when the stop check ended the work.
    void finish() const {
        if (error_) std::rethrow_exception(error_);
        if (interrupted_) throw Interrupted();
    }

  private:
    StopCheck check_;
    std::atomic<bool> stop_{false};
    std::atomic<int> team_done_{0};
    bool interrupted_ = false;  // written by thread 0 alone, read after the region
    std::chrono::steady_clock::time_point last_poll_;  // thread 0 alone
    std::mutex mutex_;
    std::exception_ptr error_;
};

}  // namespace latentcore
