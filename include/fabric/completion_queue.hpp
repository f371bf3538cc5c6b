// fabric::completion_queue: journal completions handed to a thread of your own, through a file
// descriptor its reactor watches, instead of callbacks on the journal's writer thread. A reliable
// channel appends with a queue and acts on "this append is durable" in its own loop.
//
//   fabric::completion_queue done;
//   loop.add_fd(done.fd(), [&] { done.drain([&](completion_queue::completion c) { ... }); });
//   j.append("outbox", payload, done, token);  // later: {token, seq} reaches the loop
//
// Bounds: each completion not yet drained holds one small entry (a token and a result, about
// 32 bytes); the queue sets no limit of its own. A consumer that never drains grows it by one
// entry per append made with it, so the producer bounds its appends in flight (a channel's
// window does) and with them the queue's length.
//
// Thread safety: push() from any thread (the journal's writer does); drain() and fd() from the
// consumer, one thread at a time. Linux only: fd() is an eventfd.
#pragma once

#include <fabric/result.hpp>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

namespace fabric {

class completion_queue {
 public:
  /// One finished operation: the token it was made with, and its outcome (an append's sequence
  /// number, a schedule's id, or the error append() would have reported).
  struct completion {
    std::uint64_t token;
    result<std::uint64_t> seq;
  };

  /// Throws: fabric::error(io_error) when the eventfd cannot be created.
  completion_queue();
  /// Closes the eventfd; completions not drained are dropped. Remove fd() from any reactor first.
  ~completion_queue();
  completion_queue(const completion_queue&) = delete;
  completion_queue& operator=(const completion_queue&) = delete;

  /// A descriptor that is readable while completions are queued (level-triggered): watch it
  /// with reactor::add_fd and drain() when it is. Valid for the queue's life.
  int fd() const noexcept { return fd_; }

  /// Adds a completion and makes fd() readable. What the journal's writer calls.
  /// Throws: std::bad_alloc when the entry cannot be stored.
  void push(std::uint64_t token, result<std::uint64_t> seq);

  /// Hands every completion queued so far to `on_completion(completion&&)`, in the order they
  /// were pushed, on the calling thread, and leaves fd() unreadable until the next push.
  /// Completions pushed meanwhile wait for the next drain. If `on_completion` throws, the
  /// completions not yet handed over stay queued, ahead of newer ones, and the exception
  /// propagates.
  /// Returns: the number handed over.
  template <class F>
  std::size_t drain(F&& on_completion) {
    std::vector<completion> batch = take();
    std::size_t i = 0;
    try {
      for (; i < batch.size(); ++i) on_completion(std::move(batch[i]));
    } catch (...) {
      put_back(batch, i + 1);
      throw;
    }
    return batch.size();
  }

  /// Completions queued and not yet drained.
  std::size_t size() const;

 private:
  std::vector<completion> take();
  void put_back(std::vector<completion>& batch, std::size_t from) noexcept;

  int fd_ = -1;
  mutable std::mutex mutex_;
  std::vector<completion> queue_;  // non-empty exactly when the eventfd is readable
};

}  // namespace fabric
