// The watch for the program's end is stopped and started again around every call that needs a
// lone thread (setns, unshare of some namespaces): a program that makes such calls in a loop
// stops it thousands of times, and every stop must return. A stop whose wake came between the
// watch's look at its stop flag and its sleep used to be lost: the watch slept for ever and the
// stop with it (LTP setns01 under the shim hung 1 run in 20).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "core/base/program_end_watch.h"

namespace uffdlazy {
namespace {

void never_ends(int) { std::abort(); }  // the main thread runs all along: never called

TEST(ProgramEndWatch, EveryStopReturnsWhenStoppedRightAfterAStart) {
  // On the main thread, as the shim's constructor arms it.
  ASSERT_EQ(gettid(), getpid()) << "gtest runs the test body on the main thread";
  std::atomic<bool> done{false};
  std::thread watchdog([&] {
    for (int i = 0; i < 1200 && !done.load(); i++) usleep(100 * 1000);
    if (!done.load()) {
      std::fprintf(stderr, "ProgramEndWatch::stop() has not returned within 120 s: a lost wakeup\n");
      std::_Exit(1);
    }
  });
  for (int round = 0; round < 5000; round++) {
    ProgramEndWatch watch;
    ASSERT_TRUE(watch.arm());
    ASSERT_TRUE(watch.start(never_ends, -1));
    watch.stop();
    EXPECT_FALSE(watch.running());
  }
  done.store(true);
  watchdog.join();
}

}  // namespace
}  // namespace uffdlazy
