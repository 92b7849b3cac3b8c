// How a waiting rank spins: the budget halves while another thread wants
// the same core, doubles back while none does, stays fixed where the user
// set WEFT_SPIN_COUNT, and a wait spins its budget before it yields.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <thread>

#include "core/waiter.h"

namespace weft {
namespace {

TEST(SpinBudget, HalvesWhileTheCoreIsSharedAndDoublesBackWhenItIsNot) {
  SpinBudget budget(200, true);
  budget.waited(true);
  EXPECT_EQ(budget.current, 100u);
  for (int i = 0; i < 10; ++i) budget.waited(true);
  EXPECT_EQ(budget.current, SpinBudget::kMinSpin);
  budget.waited(false);
  EXPECT_EQ(budget.current, 2 * SpinBudget::kMinSpin);
  for (int i = 0; i < 10; ++i) budget.waited(false);
  EXPECT_EQ(budget.current, 200u);

  SpinBudget fixed(5000, false);  // WEFT_SPIN_COUNT given: left as set
  fixed.waited(true);
  EXPECT_EQ(fixed.current, 5000u);

  SpinBudget small(4, true);  // a most below the least: never raised to it
  small.waited(true);
  EXPECT_EQ(small.current, 4u);
}

// A wait spins exactly its budget, then yields; reset() ends the wait.
TEST(Waiter, SpinsItsBudgetBeforeYielding) {
  SpinBudget budget(50, true);
  int checks = 0;
  Waiter waiter(&budget, 0, [&] {
    ++checks;
    return Status::ok();
  });
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(waiter.pause("test").isOk());
  EXPECT_EQ(budget.current, 50u);
  waiter.reset();  // ended while spinning: nothing learned
  EXPECT_EQ(budget.current, 50u);
}

// Two threads on one core: the waiter's yields hand the core to the other
// thread, which holds it for its timeslice share, so the budget falls to the
// least within a few waits.
TEST(Waiter, AWaitThatSharesItsCoreSpinsLessNextTime) {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(0, &one);
  cpu_set_t saved;
  ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved), 0);
  if (pthread_setaffinity_np(pthread_self(), sizeof(one), &one) != 0) GTEST_SKIP() << "cannot pin to CPU 0";
  std::atomic<bool> stop{false};
  std::thread busy([&] {
    pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
    while (!stop.load()) {
      volatile uint64_t x = 0;
      for (int i = 0; i < 100000; ++i) x = x + 1;
    }
  });
  SpinBudget budget(200, true);
  for (int wait = 0; wait < 8; ++wait) {
    Waiter waiter(&budget, 0, [] { return Status::ok(); });
    for (uint64_t i = 0; i < budget.current + 20; ++i) ASSERT_TRUE(waiter.pause("test").isOk());
    waiter.reset();
  }
  stop = true;
  busy.join();
  pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
  EXPECT_EQ(budget.current, SpinBudget::kMinSpin);
}

}  // namespace
}  // namespace weft
