// What the two public classes of the reliable channels (reliable_sender.cpp,
// reliable_receiver.cpp) share: the journal's incarnation, the wall clock times to live are read
// on, and the count of journal calls whose completions still refer to their owner.
#pragma once

#include <fabric/journal.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>

namespace fabric::detail {

/// The incarnation kept in `j` (table frc.identity, key incarnation: 8 octets big-endian), drawn
/// at random (non-zero) and stored the first time.
/// Throws: fabric::error(io_error) when it cannot be read or stored.
std::uint64_t journal_incarnation(journal& j);

/// A random non-zero incarnation, for a process that keeps none in a journal (a task worker).
std::uint64_t draw_incarnation();

/// 8 octets, big-endian: how the channels store a 64-bit value in a journal table.
std::string be64(std::uint64_t v);
/// The value of 8 octets written by be64(); 0 for any other length.
std::uint64_t from_be64(std::string_view bytes) noexcept;

/// The system clock, in ns since the Unix epoch.
std::int64_t wall_now_ns() noexcept;

/// Journal calls in flight whose completions capture their owner: the owner's destructor waits
/// until every one has run. hold() before the call, release() at the end of its completion.
class journal_calls {
 public:
  void hold() noexcept { count_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (count_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard lock(mu_);
      none_.notify_all();
    }
  }
  /// Waits until every held call has been released (a journal completes every call it took).
  void wait() {
    std::unique_lock lock(mu_);
    none_.wait(lock, [this] { return count_.load(std::memory_order_acquire) == 0; });
  }

 private:
  std::atomic<int> count_{0};
  std::mutex mu_;
  std::condition_variable none_;
};

}  // namespace fabric::detail
