#include "support/delivery_checker.hpp"

#include <sstream>
#include <unordered_map>

namespace fabric::testing {

namespace {
constexpr std::size_t max_examples = 10;
}

void delivery_history::sent(std::string_view stream, std::string id) {
  sends_[std::string(stream)].push_back({std::move(id), true});
}

void delivery_history::attempted(std::string_view stream, std::string id) {
  sends_[std::string(stream)].push_back({std::move(id), false});
}

void delivery_history::delivered(std::string_view stream, std::string id) {
  deliveries_[std::string(stream)].push_back(std::move(id));
}

check_report check(const delivery_history& h, delivery_mode mode) {
  check_report r;
  auto note = [&r](const std::string& stream, const std::string& id, std::string what) {
    if (r.examples.size() < max_examples) r.examples.push_back({stream, id, std::move(what)});
  };

  for (const auto& [stream, sends] : h.sends_)
    for (const auto& s : sends) r.sent += s.completed ? 1 : 0;

  // Streams delivered to: order, duplicates, gaps, phantoms.
  for (const auto& [stream, seen] : h.deliveries_) {
    r.delivered += seen.size();
    std::unordered_map<std::string_view, std::size_t> position;  // id -> its place in the sends
    const auto sends = h.sends_.find(stream);
    if (sends != h.sends_.end())
      for (std::size_t i = 0; i < sends->second.size(); ++i) position.emplace(sends->second[i].id, i);
    std::unordered_map<std::string_view, std::size_t> times;
    std::size_t highest = 0;  // one past the place of the latest first delivery
    std::size_t next = 0;     // one past the place of the previous delivery
    for (const auto& id : seen) {
      auto pos = position.find(id);
      if (pos == position.end()) {
        ++r.phantoms;
        note(stream, id, "delivered but never sent");
        continue;
      }
      // A jump forward may pass over sends that never arrived (attempts that were never made
      // durable; lost or late ones are counted below) but not over one delivered before: a
      // redelivery repeats everything from where it starts.
      for (std::size_t q = next; q < pos->second; ++q) {
        const std::string& skipped = sends->second[q].id;
        if (times.contains(skipped)) {
          ++r.gaps;
          note(stream, id, "delivered next in a redelivery that left out " + skipped);
          break;
        }
      }
      next = pos->second + 1;
      if (++times[id] > 1) {
        ++r.duplicated;
        if (mode == delivery_mode::effectively_once) note(stream, id, "delivered again");
        continue;
      }
      if (pos->second + 1 < highest) {
        ++r.reordered;
        note(stream, id, "delivered after a message sent later");
      } else {
        highest = pos->second + 1;
      }
    }
  }

  // Completed sends that never arrived.
  for (const auto& [stream, sends] : h.sends_) {
    auto d = h.deliveries_.find(stream);
    std::unordered_map<std::string_view, bool> arrived;
    if (d != h.deliveries_.end())
      for (const auto& id : d->second) arrived[id] = true;
    for (const auto& s : sends) {
      if (s.completed && !arrived.contains(s.id)) {
        ++r.lost;
        note(stream, s.id, "sent (completed) but never delivered");
      }
    }
  }

  r.ok_ = r.lost == 0 && r.reordered == 0 && r.phantoms == 0 && r.gaps == 0 &&
          (mode == delivery_mode::at_least_once || r.duplicated == 0);
  return r;
}

std::string check_report::describe() const {
  std::ostringstream out;
  out << sent << " sends completed, " << delivered << " deliveries: " << lost << " lost, " << duplicated
      << " duplicated, " << reordered << " out of order, " << gaps << " redeliveries with a gap, " << phantoms
      << " never sent.";
  for (const auto& f : examples) out << "\n  " << f.stream << " / " << f.id << ": " << f.what;
  return out.str();
}

}  // namespace fabric::testing
