// fabric::message out-of-line members.
#include <fabric/message.hpp>

#include <cassert>

namespace fabric {

message message::clone() const {
  message copy;
  copy.reserve(frames_.size());
  for (const frame& f : frames_) copy.push_back(f.data(), f.size());
  return copy;
}

std::size_t message::byte_size() const noexcept {
  std::size_t total = 0;
  for (const frame& f : frames_) total += f.size();
  return total;
}

// Out of line: inlined into callers, GCC 12 at -O2 reports a false null dereference in
// vector::insert, which breaks users who build with -Werror.
void message::push_front(frame&& f) { frames_.insert(frames_.begin(), std::move(f)); }

frame message::pop_front() {
  assert(!frames_.empty());
  frame f = std::move(frames_.front());
  frames_.erase(frames_.begin());
  return f;
}

frame message::pop_back() {
  assert(!frames_.empty());
  frame f = std::move(frames_.back());
  frames_.pop_back();
  return f;
}

}  // namespace fabric
