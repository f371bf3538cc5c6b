// The table of requests an async Majordomo client is waiting on: a pure structure (no sockets, no
// clock reads) that hands out request ids, finds a request by id in O(1), and keeps requests in
// deadline order so the next one to expire is always at the front.
//
// Layout: a vector of slots grown on demand up to `capacity`, a free list, a doubly linked list
// of busy slots ordered by (deadline, insertion), and a second one of the requests sent without
// a request id (plain 7/MDP), in the order they went out, since a plain reply can only be told
// apart by its service and its place in that order. A request id is
// (counter << slot_bits) | slot, so the slot is read straight from the id and the counter tells a
// live request from an older one that used the same slot. Nothing is allocated once every slot has
// been used once (a service name longer than the string's small buffer keeps its capacity).
//
// Ids are never 0. The counter has 64 - slot_bits bits (at least 40) and wraps after that many
// requests; an id is reused only if a reply arrives that late.
//
// Thread safety: none; one thread uses a table.
#pragma once

#include <fabric/error.hpp>

#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fabric::mdp {

class outstanding_table {
 public:
  using clock = std::chrono::steady_clock;
  using time_point = clock::time_point;

  /// The largest capacity (16 Mi requests); the id keeps at least 40 bits for its counter.
  static constexpr std::size_t max_capacity = std::size_t{1} << 24;
  /// The deadline of a request that never expires.
  static constexpr time_point never = time_point::max();

  struct entry {
    std::uint64_t id = 0;
    time_point deadline{};
    std::string service{};
    std::uint32_t prev = none;
    std::uint32_t next = none;
    std::uint32_t sent_prev = none;  // the plain list, while `plain`
    std::uint32_t sent_next = none;
    bool busy = false;
    bool plain = false;  // sent without a request id (mark_sent_plain)
  };

  /// Throws: fabric::error(invalid_argument) unless 1 <= capacity <= max_capacity.
  explicit outstanding_table(std::size_t capacity) : capacity_(capacity) {
    if (capacity == 0 || capacity > max_capacity)
      throw error(errc::invalid_argument, "mdp: max_outstanding must be between 1 and 16777216");
    bits_ = capacity <= 1 ? 0U : static_cast<unsigned>(std::bit_width(capacity - 1));
    slot_mask_ = (std::uint64_t{1} << bits_) - 1;
    counter_limit_ = bits_ == 0 ? ~std::uint64_t{0} : (std::uint64_t{1} << (64 - bits_)) - 1;
  }

  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  bool empty() const noexcept { return size_ == 0; }
  bool full() const noexcept { return size_ == capacity_; }

  /// Adds a request for `service` that expires at `deadline` (`never` for none).
  /// Returns: its id, never 0. Precondition: !full().
  std::uint64_t insert(std::string_view service, time_point deadline) {
    std::uint32_t slot;
    if (free_ != none) {
      slot = free_;
      free_ = slots_[slot].next;
    } else {
      slot = static_cast<std::uint32_t>(slots_.size());
      slots_.emplace_back();
    }
    counter_ = counter_ >= counter_limit_ ? 1 : counter_ + 1;
    entry& e = slots_[slot];
    e.id = (counter_ << bits_) | slot;
    e.deadline = deadline;
    e.service.assign(service);
    e.busy = true;
    link_by_deadline(slot);
    ++size_;
    return e.id;
  }

  /// The request with `id`, or null when it is not outstanding (answered, expired, never sent).
  const entry* find(std::uint64_t id) const noexcept {
    const std::uint64_t slot = id & slot_mask_;
    if (slot >= slots_.size()) return nullptr;
    const entry& e = slots_[slot];
    return e.busy && e.id == id ? &e : nullptr;
  }

  /// The request with the earliest deadline (the first inserted among equal deadlines), or null.
  const entry* oldest() const noexcept { return head_ == none ? nullptr : &slots_[head_]; }

  /// Records that the request with `id` has just been sent as plain 7/MDP (no request id): it
  /// joins the end of the plain list. Precondition: find(id) and not yet marked.
  void mark_sent_plain(std::uint64_t id) noexcept {
    const auto slot = static_cast<std::uint32_t>(id & slot_mask_);
    entry& e = slots_[slot];
    e.plain = true;
    e.sent_prev = sent_tail_;
    e.sent_next = none;
    if (sent_tail_ != none) slots_[sent_tail_].sent_next = slot; else sent_head_ = slot;
    sent_tail_ = slot;
  }

  /// Forgets which requests were sent plain, as when the socket that carried them has been
  /// replaced: none is matched to a plain reply again until it is marked anew.
  void clear_plain() noexcept {
    while (sent_head_ != none) unlink_sent(sent_head_);
  }

  /// The first request for `service` sent plain that is still outstanding, in the order they
  /// were sent, or null. O(plain requests for other services sent before it).
  const entry* oldest_plain_for(std::string_view service) const noexcept {
    for (std::uint32_t i = sent_head_; i != none; i = slots_[i].sent_next)
      if (slots_[i].service == service) return &slots_[i];
    return nullptr;
  }

  /// Removes the request with `id`. Returns: false when it was not outstanding.
  bool erase(std::uint64_t id) noexcept {
    if (find(id) == nullptr) return false;
    const auto slot = static_cast<std::uint32_t>(id & slot_mask_);
    unlink(slot);
    entry& e = slots_[slot];
    if (e.plain) unlink_sent(slot);
    e.busy = false;
    e.next = free_;
    free_ = slot;
    --size_;
    return true;
  }

 private:
  static constexpr std::uint32_t none = ~std::uint32_t{0};

  // Walks back from the tail: with one timeout for every request the new one goes last at once.
  void link_by_deadline(std::uint32_t slot) {
    entry& e = slots_[slot];
    std::uint32_t after = tail_;
    while (after != none && slots_[after].deadline > e.deadline) after = slots_[after].prev;
    e.prev = after;
    e.next = after == none ? head_ : slots_[after].next;
    if (e.next != none) slots_[e.next].prev = slot; else tail_ = slot;
    if (after != none) slots_[after].next = slot; else head_ = slot;
  }

  void unlink(std::uint32_t slot) noexcept {
    entry& e = slots_[slot];
    if (e.prev != none) slots_[e.prev].next = e.next; else head_ = e.next;
    if (e.next != none) slots_[e.next].prev = e.prev; else tail_ = e.prev;
    e.prev = e.next = none;
  }

  void unlink_sent(std::uint32_t slot) noexcept {
    entry& e = slots_[slot];
    if (e.sent_prev != none) slots_[e.sent_prev].sent_next = e.sent_next; else sent_head_ = e.sent_next;
    if (e.sent_next != none) slots_[e.sent_next].sent_prev = e.sent_prev; else sent_tail_ = e.sent_prev;
    e.sent_prev = e.sent_next = none;
    e.plain = false;
  }

  std::vector<entry> slots_;
  std::size_t capacity_;
  std::size_t size_ = 0;
  unsigned bits_ = 0;
  std::uint64_t slot_mask_ = 0;
  std::uint64_t counter_limit_ = 0;
  std::uint64_t counter_ = 0;
  std::uint32_t free_ = none;
  std::uint32_t head_ = none;
  std::uint32_t tail_ = none;
  std::uint32_t sent_head_ = none;
  std::uint32_t sent_tail_ = none;
};

}  // namespace fabric::mdp
