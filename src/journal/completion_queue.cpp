// fabric::completion_queue: an eventfd that is readable exactly while the queue holds
// completions, so a reactor's level-triggered watch wakes the consumer once per burst.
#include <fabric/completion_queue.hpp>
#include <fabric/error.hpp>

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>

namespace fabric {

namespace {

void signal_fd(int fd) noexcept {
  const std::uint64_t one = 1;
  // Cannot fail short of a bad descriptor: the counter is far from overflowing, since it is
  // reset on every drain and raised once per empty-to-non-empty change.
  [[maybe_unused]] const ssize_t n = ::write(fd, &one, sizeof one);
}

void reset_fd(int fd) noexcept {
  std::uint64_t count = 0;
  [[maybe_unused]] const ssize_t n = ::read(fd, &count, sizeof count);  // EAGAIN when already reset
}

}  // namespace

completion_queue::completion_queue() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) throw error(errc::io_error, std::string("completion_queue: cannot create an eventfd: ") + std::strerror(errno));
}

completion_queue::~completion_queue() {
  if (fd_ >= 0) ::close(fd_);
}

void completion_queue::push(std::uint64_t token, result<std::uint64_t> seq) {
  std::lock_guard lock(mutex_);
  queue_.push_back({token, std::move(seq)});
  // Under the lock, so the descriptor is readable exactly while the queue is not empty.
  if (queue_.size() == 1) signal_fd(fd_);
}

std::vector<completion_queue::completion> completion_queue::take() {
  std::vector<completion> batch;
  std::lock_guard lock(mutex_);
  if (queue_.empty()) return batch;
  reset_fd(fd_);
  batch.swap(queue_);
  return batch;
}

void completion_queue::put_back(std::vector<completion>& batch, std::size_t from) noexcept {
  if (from >= batch.size()) return;
  std::lock_guard lock(mutex_);
  const bool was_empty = queue_.empty();
  try {
    queue_.insert(queue_.begin(), std::make_move_iterator(batch.begin() + static_cast<std::ptrdiff_t>(from)),
                  std::make_move_iterator(batch.end()));
  } catch (...) {
    return;  // out of memory: those completions are lost, as they would be on a failed push
  }
  if (was_empty) signal_fd(fd_);
}

std::size_t completion_queue::size() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

}  // namespace fabric
