// A wall clock that moves only when a test moves it, for journal_options::clock, so TTL,
// schedules and age retention are tested without waiting on real time. It counts its reads: a
// test can wait (bounded, on a condition variable) until the journal's writer has read the time
// after a step, which is how it knows an idle pass has begun at the new time.
#pragma once

#include "support/support.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

namespace fabric::testing {

class fake_clock {
 public:
  using time_point = std::chrono::system_clock::time_point;

  /// Starts at `start`: by default 2026-01-01T00:00:00Z, well clear of the real time's digits.
  explicit fake_clock(time_point start = time_point(std::chrono::seconds(1767225600)))
      : state_(std::make_shared<state>()) {
    state_->now = start;
  }

  /// What journal_options::clock takes. It shares this clock's state, so it stays valid after
  /// the fake_clock goes (and keeps the time it had then).
  std::function<time_point()> source() const {
    return [s = state_] {
      std::lock_guard lock(s->mutex);
      ++s->reads;
      s->read_cv.notify_all();
      return s->now;
    };
  }

  time_point now() const {
    std::lock_guard lock(state_->mutex);
    return state_->now;
  }
  std::int64_t now_ns() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(now().time_since_epoch()).count();
  }

  /// Moves the time by `d` (back, when negative) and starts counting reads afresh.
  void advance(std::chrono::nanoseconds d) {
    std::lock_guard lock(state_->mutex);
    state_->now += std::chrono::duration_cast<time_point::duration>(d);
    state_->reads = 0;
  }

  /// Waits until the clock has been read since the last advance(). Returns false after `bound`.
  bool wait_for_read(std::chrono::milliseconds bound = wait_bound) {
    std::unique_lock lock(state_->mutex);
    return state_->read_cv.wait_for(lock, bound, [&] { return state_->reads > 0; });
  }

 private:
  struct state {
    std::mutex mutex;
    std::condition_variable read_cv;
    time_point now;
    std::uint64_t reads = 0;
  };
  std::shared_ptr<state> state_;
};

/// fast_journal_options() on `clock`.
inline journal_options fast_journal_options(const fake_clock& clock) {
  journal_options o = fast_journal_options();
  o.clock = clock.source();
  return o;
}

/// Waits until the idle writer of `j` has read `clock` since it last moved, then for that pass to
/// commit, and runs `observe` in between: the function given to transact runs after the pass, on
/// the writer thread, before the transaction's own maintenance, so `observe` sees what the idle
/// pass did and nothing else. (It may read the journal there: reads do not wait for the writer.)
inline void after_idle_pass(journal& j, fake_clock& clock, const std::function<void()>& observe) {
  ASSERT_TRUE(clock.wait_for_read()) << "the idle writer never read the clock";
  ASSERT_TRUE(j.transact([&](journal_txn&) { observe(); }));
}

}  // namespace fabric::testing
