// Fuzz target: the Majordomo broker's state machine (src/reliability/mdp_broker.hpp) fed a
// sequence of events on a fake clock: raw messages from a few peers, well-formed commands built
// from the input (so that the fuzzer reaches dispatch, replies, requeues and expiry without first
// learning the grammar), time passing, and peers whose connection is full or gone. After every
// event the machine's books must balance (broker_machine::check_books()).
#include "fuzz_frames.hpp"

#include "reliability/mdp.hpp"
#include "reliability/mdp_broker.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using fabric::message;
using fabric::fuzz::check;
namespace mdp = fabric::mdp;
using namespace std::chrono_literals;

constexpr std::size_t max_events = 512;
constexpr std::size_t peers = 6;
constexpr std::size_t services = 3;

std::string peer_name(std::size_t i) { return "peer-" + std::to_string(i % peers); }
std::string service_name(std::size_t i) {
  static const char* const names[services + 1] = {"echo", "work", "mmi.service", "mmi.nope"};
  return names[i % (services + 1)];
}

// A transport whose peers can be full or gone; remembers the requests given to workers so that
// the input can answer them.
class sink final : public mdp::broker_sink {
 public:
  using broker_sink::send;
  fabric::result<void> send(fabric::detail::port, message&& m) override {
    check(!m.empty(), "the broker sent a message with no routing id");
    const std::string peer(m.view(0));
    if (gone.count(peer) != 0) return fabric::errc::peer_unreachable;
    if (full.count(peer) != 0) return fabric::errc::back_pressure;
    if (m.size() >= 7 && m.view(2) == mdp::worker_header && m.view(3) == "\x02") {
      if (held.size() >= 64) held.erase(held.begin());
      held.emplace_back(peer, std::string(m.view(4)));
    }
    m.clear();
    return {};
  }
  std::set<std::string> gone;
  std::set<std::string> full;
  std::vector<std::pair<std::string, std::string>> held;  // worker, client address
};

message with_identity(const std::string& peer, message&& rest) {
  message m;
  m.push_back(peer);
  for (auto& f : rest) m.push_back(std::move(f));
  return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fabric::fuzz::input in(data, size);
  mdp::broker_options options;
  const std::uint8_t shape = in.byte();
  options.heartbeat_interval = 1000ms;
  options.liveness = 1 + shape % 3;
  options.request_expiry = (shape & 0x08) ? 0ms : std::chrono::milliseconds(500 + 500 * (shape % 5));
  options.service_idle_timeout = std::chrono::milliseconds(1000 * (shape % 4));
  options.max_queued_per_service = 1 + in.byte() % 8;
  options.max_queued_total = 1 + in.byte() % 16;
  options.max_services = 1 + in.byte() % 4;
  options.max_workers = 1 + in.byte() % 6;
  options.max_dispatches = 1 + in.byte() % 3;
  options.max_return_frames = in.byte() % 4;
  options.max_worker_credit = 1 + in.byte() % 4;
  options.max_peer_bytes = 64 + 16 * std::size_t{in.byte()};
  options.max_total_bytes = 256 + 32 * std::size_t{in.byte()};

  sink out;
  auto now = mdp::broker_machine::time_point(std::chrono::seconds(1000));
  mdp::broker_machine machine(options, out, now);

  for (std::size_t event = 0; event < max_events && !in.empty(); ++event) {
    const std::uint8_t op = in.byte();
    const std::string peer = peer_name(op >> 4);
    switch (op % 8) {
      case 0:  // anything at all after the routing id
        machine.on_message(with_identity(peer, in.counted_message()), now);
        break;
      case 1:  // a client's request
        machine.on_message(with_identity(peer, mdp::client_request_msg(service_name(in.byte()),
                                                                       message(in.frame_bytes()))),
                           now);
        break;
      case 2: {  // a worker's READY
        const std::uint32_t credit = 1 + in.byte() % 5;
        machine.on_message(with_identity(peer, mdp::worker_ready(service_name(in.byte()), credit)), now);
        break;
      }
      case 3: {  // a reply to a request some worker was given (or a stale one)
        if (out.held.empty()) break;
        const auto& [worker, client] = out.held[in.byte() % out.held.size()];
        machine.on_message(with_identity(worker, mdp::worker_reply(client, message(in.frame_bytes()))), now);
        break;
      }
      case 4:
        machine.on_message(with_identity(peer, (op & 0x08) ? mdp::worker_disconnect() : mdp::worker_heartbeat()),
                           now);
        break;
      case 5:  // time passes
        now += std::chrono::milliseconds(50 * std::size_t{in.byte()});
        if (now >= machine.next_tick()) machine.on_tick(now);
        break;
      case 6:  // a peer's connection fills up, or frees
        if (!out.full.erase(peer)) out.full.insert(peer);
        break;
      default:  // a peer's connection goes, or comes back
        if (!out.gone.erase(peer)) out.gone.insert(peer);
        break;
    }
    const std::string books = machine.check_books();
    if (!books.empty()) {
      std::fprintf(stderr, "after event %zu: %s\n", event, books.c_str());
      check(false, "the broker's books do not balance");
    }
  }
  (void)machine.stats();
  return 0;
}
