// A signal source for tests of signal handlers that run inside the shim, whatever the host's speed.
//
// An interval timer fires at a fixed period: when one handler round (a mapping made, a page
// faulted, the mapping dropped) costs more than the period, as it may on a slow or loaded host
// under the shim, the handler runs again as soon as it returns and the program never advances.
// PacedSignals instead sends the next signal only once the handler has run and the interrupted
// thread has made progress of its own, so the program always finishes; the signals still land at
// arbitrary points of that thread's work (inside the shim's interposers among them).
#pragma once

#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <atomic>

class PacedSignals {
 public:
  // Sends `sig` to the calling thread until stop(), starting after its first progressed(); the
  // handler must call handled() and the thread must call progressed() once per unit of its own work.
  explicit PacedSignals(int sig) : sig_(sig), target_(pthread_self()) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);  // the pacer itself never takes the signal
    pthread_create(&thread_, nullptr, &PacedSignals::run, this);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  ~PacedSignals() { stop(); }

  void handled() { handled_.fetch_add(1); }
  void progressed() { progress_.fetch_add(1); }
  long signals_handled() const { return handled_.load(); }

  void stop() {
    if (stopped_.exchange(true)) return;
    pthread_join(thread_, nullptr);
  }

 private:
  static void* run(void* self) {
    static_cast<PacedSignals*>(self)->loop();
    return nullptr;
  }

  void loop() {
    // The first signal waits for the thread's first unit of work: by then the handler can reach
    // this object (a handler that ran before the program stored its pointer would never count,
    // and the pacer would wait for it for ever while the program waited for signals).
    while (!stopped_.load() && progress_.load() == 0) sched_yield();
    while (!stopped_.load()) {
      const long before_handled = handled_.load();
      const long before_progress = progress_.load();
      pthread_kill(target_, sig_);
      // Wait for the handler, then for the thread's own work to move on.
      while (!stopped_.load() && handled_.load() == before_handled) sched_yield();
      while (!stopped_.load() && progress_.load() == before_progress) sched_yield();
    }
  }

  const int sig_;
  const pthread_t target_;
  pthread_t thread_{};
  std::atomic<long> handled_{0};
  std::atomic<long> progress_{0};
  std::atomic<bool> stopped_{false};
};
