// A broker_sink for tests of the Majordomo broker's machine: records what it sends, and plays a
// transport whose peers can be gone, full, or not reading their replies.
#pragma once

#include "reliability/mdp_broker.hpp"

#include <fabric/error.hpp>
#include <fabric/message.hpp>

#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fabric::testing {

using frames = std::vector<std::string>;

inline frames strings(const message& m) {
  frames out;
  for (std::size_t i = 0; i < m.size(); ++i) out.emplace_back(m.view(i));
  return out;
}

class recording_sink final : public mdp::broker_sink {
 public:
  using broker_sink::send;
  result<void> send(detail::port, message&& m) override {
    const std::string peer(m.view(0));
    if (unreachable.count(peer) != 0) return errc::peer_unreachable;
    if (full.count(peer) != 0) return errc::back_pressure;
    sent.push_back(strings(m));
    m.clear();
    return {};
  }
  // Replies to a peer in `unread` stay queued in the "transport" until read_all(peer).
  result<void> send_reply(message&& m) override {
    const std::string peer(m.view(0));
    const std::size_t bytes = m.byte_size();
    auto r = send(std::move(m));
    if (r && unread.count(peer) != 0) {
      waiting[peer] += bytes;
      waiting_total += bytes;
    }
    return r;
  }
  std::size_t outbound_bytes(std::string_view peer) const noexcept override {
    const auto it = waiting.find(std::string(peer));
    return it == waiting.end() ? 0 : it->second;
  }
  std::size_t outbound_bytes() const noexcept override { return waiting_total; }
  // The peer reads everything waiting for it.
  void read_all(const std::string& peer) {
    waiting_total -= waiting[peer];
    waiting.erase(peer);
  }
  void log(mdp::log_level, std::string_view line) override { lines.emplace_back(line); }

  // Takes everything sent so far.
  std::vector<frames> take() { return std::exchange(sent, {}); }

  std::vector<frames> sent;
  std::vector<std::string> lines;
  std::set<std::string> unreachable;
  std::set<std::string> full;
  std::set<std::string> unread;
  std::map<std::string, std::size_t> waiting;
  std::size_t waiting_total = 0;
};

}  // namespace fabric::testing
