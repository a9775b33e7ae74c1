// A time budget per fuzz input. libFuzzer's -timeout counts whole seconds; the readers must
// handle any input in well under that (an attacker-made file must not cost minutes), so each
// input gets 100 ms of CPU time (UFFDLAZY_FUZZ_BUDGET_MS overrides it). An input over budget
// aborts like a crash, so libFuzzer saves it as a crash-* artifact that reproduces the slowness.
// Thread CPU time, not wall time: a busy machine must not turn into false findings.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace uffdlazy::fuzz {

class InputBudget {
 public:
  InputBudget() : start_(cpu_ns()) {}
  ~InputBudget() {
    const long long used = cpu_ns() - start_;
    if (used > limit_ns()) {
      std::fprintf(stderr, "uffdlazy fuzz: input took %lld ms of CPU, the budget is %lld ms\n", used / 1000000,
                   limit_ns() / 1000000);
      std::abort();
    }
  }
  InputBudget(const InputBudget&) = delete;
  InputBudget& operator=(const InputBudget&) = delete;

 private:
  static long long cpu_ns() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000000000ll + ts.tv_nsec;
  }
  static long long limit_ns() {
    static const long long limit = [] {
      const char* ms = std::getenv("UFFDLAZY_FUZZ_BUDGET_MS");
      return (ms && std::atoll(ms) > 0 ? std::atoll(ms) : 100) * 1000000ll;
    }();
    return limit;
  }
  long long start_;
};

}  // namespace uffdlazy::fuzz
