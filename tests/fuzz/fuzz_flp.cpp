// Fuzz target: the 10/FLP grammar (src/reliability/flp.hpp), the Freelance client machine
// (flp_client.hpp) and the server machine (flp_server.hpp), fed a sequence of events on a fake
// clock: raw messages from known and unknown servers, requests, servers answering what they hold,
// pongs, time passing, servers that vanish or fill up, cancels, and raw messages at a server. After
// every event: each request completes at most once, only requests that were made complete, and
// the client stays within its bounds; what a server sends back parses at a client.
#include "fuzz_frames.hpp"

#include "reliability/flp.hpp"
#include "reliability/flp_client.hpp"
#include "reliability/flp_server.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace {

using fabric::message;
using fabric::fuzz::check;
namespace flp = fabric::flp;
using namespace std::chrono_literals;

constexpr std::size_t max_events = 512;
const std::vector<std::string> endpoints = {"tcp://a:1", "tcp://b:2", "ipc:///c", "tcp://stranger:9"};

// The client's sink: remembers the requests each server holds so that the input can answer them.
class client_sink final : public fabric::detail::machine_sink {
 public:
  fabric::result<void> send(fabric::detail::port, message&& m) override {
    check(m.size() >= 2, "the client sent a message with no command");
    const std::string server(m.view(0));
    if (const auto it = refuse.find(server); it != refuse.end()) return it->second;
    const auto p = flp::parse_at_server(m);  // what the client sends, as a server reads it
    check(p.what != flp::at_server::kind::malformed, "the client sent a malformed message");
    if (p.what == flp::at_server::kind::request) {
      check(m[1].size() == flp::sequence_size, "the client's control frame is not a sequence number");
      if (held.size() >= 64) held.erase(held.begin());
      held.emplace_back(server, std::string(m.view(1)));
    }
    m.clear();
    return {};
  }
  std::map<std::string, fabric::errc> refuse;
  std::vector<std::pair<std::string, std::string>> held;  // server, control frame
};

// The server's sink: whatever it sends must parse at a client.
class server_sink final : public fabric::detail::machine_sink {
 public:
  fabric::result<void> send(fabric::detail::port, message&& m) override {
    check(m.size() >= 2, "the server sent nothing after the identity");
    if (m.size() == 2) check(m.view(1) == flp::pong_command, "a one-frame answer that is not PONG");
    m.clear();
    return {};
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fabric::fuzz::input in(data, size);
  const std::uint8_t shape = in.byte();
  fabric::freelance::client_options o;
  o.servers = {endpoints[0], endpoints[1], endpoints[2]};
  o.ping_interval = 100ms;
  o.server_expiry = 300ms;
  o.timeout = std::chrono::milliseconds(50 + 50 * (shape % 4));
  o.request_expiry = 1000ms;
  o.copies = 1 + (shape >> 2) % 3;
  o.max_outstanding = 1 + (shape >> 4) % 16;

  client_sink out;
  auto now = flp::time_point(std::chrono::seconds(1000));
  flp::client_machine client(o, out, now, 1 + in.number(1));
  server_sink back;
  flp::server_machine server(back, 8 + (shape % 32), {});

  std::set<std::uint64_t> made, completed;
  for (std::size_t event = 0; event < max_events && !in.empty(); ++event) {
    const std::uint8_t op = in.byte();
    const std::string& peer = endpoints[(op >> 4) % endpoints.size()];
    switch (op & 0x07) {
      case 0: {  // anything at all from a server (or a stranger)
        message m = in.counted_message();
        const auto p = flp::parse_at_client([&] {
          message copy = m.clone();
          copy.push_front(peer);
          return copy;
        }());
        if (p.what == flp::at_client::kind::reply) check(m.size() >= 2, "a reply without a body");
        m.push_front(peer);
        client.on_message(std::move(m), now);
        break;
      }
      case 1: {  // a request
        message body;
        body.push_back(in.frame_bytes());
        auto id = client.submit(body, now, std::chrono::milliseconds(10 * (1 + in.byte())));
        if (id) {
          check(made.insert(*id).second, "a request id was given twice");
        } else {
          check(body.size() == 1, "a refused request lost its body");
        }
        break;
      }
      case 2: {  // a server answers what it holds, or pongs
        if ((op & 0x08) || out.held.empty()) {
          message m;
          m.push_back(peer);
          m.push_back(flp::pong_command);
          client.on_message(std::move(m), now);
          break;
        }
        const auto& [holder, control] = out.held[in.byte() % out.held.size()];
        message m;
        m.push_back(holder);
        m.push_back(control);
        m.push_back(in.frame_bytes());
        client.on_message(std::move(m), now);
        break;
      }
      case 3:  // time passes
        now += std::chrono::milliseconds(5 * std::size_t{in.byte()});
        if (now >= client.next_tick()) client.on_tick(now);
        break;
      case 4: {  // a server vanishes, fills up, or comes back
        const std::uint8_t how = in.byte() % 3;
        if (how == 0) out.refuse.erase(peer);
        if (how == 1) out.refuse[peer] = fabric::errc::peer_unreachable;
        if (how == 2) out.refuse[peer] = fabric::errc::back_pressure;
        break;
      }
      case 5:  // a cancel
        if (!made.empty()) {
          auto it = made.begin();
          std::advance(it, in.byte() % made.size());
          if (client.cancel(*it)) completed.insert(*it);
        }
        break;
      case 6: {  // anything at all at a server
        message m = in.counted_message();
        m.push_front(peer);
        fabric::freelance::request r;
        if (server.accept(std::move(m), r)) {
          check(!r.body.empty(), "a request without a body");
          message answer = in.counted_message();
          (void)server.reply(r, answer);
        }
        break;
      }
      default: {  // the application takes what completed
        fabric::freelance::reply r;
        while (client.take(r)) {
          check(made.count(r.id) == 1, "a completion for a request never made");
          check(completed.insert(r.id).second, "a request completed twice");
          if (r.status == fabric::freelance::reply_status::ok) check(!r.body.empty(), "an answer without a body");
        }
        break;
      }
    }
    check(client.outstanding() + client.completed() <= o.max_outstanding, "more requests than max_outstanding");
    std::size_t in_flight = 0;
    for (std::size_t i = 0; i < 3; ++i) in_flight += client.in_flight(endpoints[i]);
    check(in_flight <= client.outstanding() * o.copies, "more attempts in flight than requests allow");
    check(client.live_servers() <= 3, "more live servers than servers");
  }
  (void)client.stats();
  (void)server.stats();
  return 0;
}
