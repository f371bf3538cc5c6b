// Fuzz target: the 6/PPP frame helpers and the Paranoid Pirate queue's state machine
// (src/reliability/ppp.hpp) fed a sequence of events on a fake clock: raw messages from clients
// and workers, READY/HEARTBEAT/replies built from the input, time passing and workers that cannot
// be reached. The queue's gauges must stay within its bounds after every event.
#include "fuzz_frames.hpp"

#include "reliability/ppp.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace {

using fabric::message;
using fabric::fuzz::check;
namespace ppp = fabric::ppp;
using ppp::port;
using namespace std::chrono_literals;

constexpr std::size_t max_events = 512;

// Remembers the requests handed to workers so that the input can answer them.
class sink final : public fabric::detail::machine_sink {
 public:
  fabric::result<void> send(port to, message&& m) override {
    check(!m.empty(), "the queue sent a message with no routing id");
    const std::string peer(m.view(0));
    if (to == port::backend) {
      if (gone.count(peer) != 0) return fabric::errc::peer_unreachable;
      if (m.size() > 2) {
        if (held.size() >= 32) held.erase(held.begin());
        message kept = m.clone();
        held.push_back(std::move(kept));
      }
    }
    m.clear();
    return {};
  }
  std::set<std::string> gone;
  std::vector<message> held;  // worker id | address stack | "" | content
};

// The frame helpers, on any message.
void helpers(const message& m) {
  const auto delimiter = ppp::find_delimiter(m);
  if (delimiter) {
    check(*delimiter < m.size() && m[*delimiter].size() == 0, "find_delimiter found a frame that is not empty");
    for (std::size_t i = 0; i < *delimiter; ++i) check(m[i].size() != 0, "find_delimiter skipped an empty frame");
  }
  (void)ppp::is_command(m, 0x01);
  (void)ppp::is_command(m, 0x02);
  message copy = m.clone();
  message shared = ppp::share(copy);
  check(fabric::fuzz::same_frames(shared, 0, m, 0), "a shared message differs from its original");
  check(ppp::same_address_stack(shared, m) == delimiter.has_value(), "same_address_stack on equal messages");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fabric::fuzz::input in(data, size);
  fabric::ppp::queue_options options;
  const std::uint8_t shape = in.byte();
  options.heartbeat_interval = 1000ms;
  options.liveness = 1 + shape % 3;
  options.max_queued_requests = 1 + in.byte() % 8;
  options.overflow = (shape & 0x10) ? fabric::ppp::overflow_policy::drop_newest : fabric::ppp::overflow_policy::drop_oldest;
  options.request_expiry = (shape & 0x20) ? std::chrono::milliseconds(200 * (1 + shape % 7)) : 0ms;
  options.max_workers = 1 + in.byte() % 5;
  options.max_dispatches = 1 + in.byte() % 3;

  sink out;
  auto now = ppp::time_point(std::chrono::seconds(1000));
  ppp::queue_machine queue(options, out, now);

  for (std::size_t event = 0; event < max_events && !in.empty(); ++event) {
    const std::uint8_t op = in.byte();
    const std::string peer = "peer-" + std::to_string((op >> 4) % 6);
    switch (op & 0x07) {
      case 0: {  // anything at all from a client or a worker
        message m = in.counted_message();
        helpers(m);
        m.push_front(peer);
        queue.on_message((op & 0x08) ? port::backend : port::main, std::move(m), now);
        break;
      }
      case 1: {  // a client's request: identity | "" | content
        message m;
        m.push_back(peer);
        m.push_back("");
        m.push_back(in.frame_bytes());
        queue.on_message(port::main, std::move(m), now);
        break;
      }
      case 2: {  // a worker's READY or HEARTBEAT
        message m = (op & 0x08) ? ppp::heartbeat_message() : ppp::ready_message();
        m.push_front(peer);
        queue.on_message(port::backend, std::move(m), now);
        break;
      }
      case 3: {  // a worker answers a request it was given
        if (out.held.empty()) break;
        message m = out.held[in.byte() % out.held.size()].clone();
        m.back() = fabric::make_frame(in.frame_bytes());
        queue.on_message(port::backend, std::move(m), now);
        break;
      }
      case 4:  // time passes
        now += std::chrono::milliseconds(50 * std::size_t{in.byte()});
        if (now >= queue.next_tick()) queue.on_tick(now);
        break;
      case 5:  // a worker becomes unreachable, or reachable again
        if (!out.gone.erase(peer)) out.gone.insert(peer);
        break;
      default:
        queue.note_malformed_client();
        break;
    }
    check(queue.queued_count() <= options.max_queued_requests, "more requests queued than the bound");
    check(queue.idle_count() + queue.busy_count() <= options.max_workers, "more workers than the bound");
  }
  (void)queue.stats();
  return 0;
}
