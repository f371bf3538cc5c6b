// Fuzz target: the FRS/1 subscriber's machine (src/reliability/frs_subscriber.hpp) fed a sequence
// of events on a fake clock: raw messages on the live feed and the replay endpoint, LIVE, BEACON
// and HEARTBEAT built from the input, answers (BATCH, END, GONE, REFUSE) to the FETCHes the
// machine sent, time passing, a store that drains or fails. Checked after every delivery: each
// stream is delivered in order with no gap and no repeat, but for ranges reported gone and across
// a change of publisher.
#include "fuzz_frames.hpp"

#include "reliability/frs.hpp"
#include "reliability/frs_subscriber.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using fabric::message;
using fabric::fuzz::check;
namespace frs = fabric::frs;
using namespace std::chrono_literals;

constexpr std::size_t max_events = 512;
const char* const streams[] = {"orders", "prices"};

struct fetch_sent {
  std::uint32_t request;
  std::string stream;
  std::uint64_t from;
  std::uint32_t max_count;
};

class sink final : public fabric::detail::machine_sink {
 public:
  fabric::result<void> send(fabric::detail::port to, message&& m) override {
    check(to == frs::fetch_port, "the subscriber sent on its live feed");
    message routed = std::move(m);
    routed.push_front("subscriber");
    const frs::parsed p = frs::parse_at_publisher(routed);
    check(static_cast<bool>(p), "the subscriber sent what a publisher cannot parse");
    if (failing) return fabric::errc::back_pressure;
    if (fetches.size() >= 16) fetches.erase(fetches.begin());
    fetches.push_back({p.request, std::string(p.stream), p.fetch.from, p.fetch.max_count});
    return {};
  }
  bool failing = false;
  std::vector<fetch_sent> fetches;
};

class store final : public frs::subscriber_store {
 public:
  fabric::result<std::optional<frs::position>> load(std::string_view stream) override {
    if (failing_loads) return fabric::errc::io_error;
    const auto it = positions.find(std::string(stream));
    if (it == positions.end()) return std::optional<frs::position>();
    return std::optional<frs::position>(it->second);
  }
  void deliver(const frs::delivery& d) override {
    const std::string stream(d.stream);
    auto& next = expected[stream];
    if (next && next->incarnation == d.incarnation)
      check(d.seq == next->next, "a stream was delivered out of order, with a gap or a repeat");
    next = frs::position{d.incarnation, d.seq + 1};
    positions[stream] = *next;
    ++backlog_;
  }
  std::size_t backlog() const noexcept override { return backlog_; }
  void report(const frs::stream_event& e) override {
    using kind = frs::stream_event::kind;
    if (e.stream.empty()) return;
    auto& next = expected[e.stream];
    if (e.what == kind::gone) {
      check(e.to >= e.from, "a gone range ends before it starts");
      if (next) next->next = e.to + 1;
    } else if (e.what == kind::publisher_replaced || e.what == kind::publisher_regressed) {
      next.reset();  // a new history: the next delivery starts it
    }
  }
  void drain() noexcept { backlog_ = 0; }

  bool failing_loads = false;
  std::map<std::string, frs::position> positions;

 private:
  std::map<std::string, std::optional<frs::position>> expected;
  std::size_t backlog_ = 0;
};

message answer(message&& routed) {
  message m = std::move(routed);
  (void)m.pop_front();  // the ROUTER's routing id, which the DEALER never sees
  return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fabric::fuzz::input in(data, size);
  frs::subscriber_settings settings;
  const std::uint8_t shape = in.byte();
  switch (shape % 3) {
    case 0: settings.start = {frs::start_position::kind::latest, 0}; break;
    case 1: settings.start = {frs::start_position::kind::from_seq, 1 + std::uint64_t{in.byte()}}; break;
    default: settings.start = {frs::start_position::kind::from_time, in.number(2)}; break;
  }
  settings.fetch_count = 1 + in.byte() % 8;
  settings.max_fetches = 1 + in.byte() % 3;
  settings.max_held = 1 + in.byte() % 8;
  settings.max_streams = 1 + in.byte() % 2;
  settings.max_backlog = 1 + in.byte() % 16;

  sink out;
  store journal;
  auto now = fabric::detail::time_point(std::chrono::seconds(1000));
  frs::subscriber_machine machine(settings, out, journal);

  for (std::size_t event = 0; event < max_events && !in.empty(); ++event) {
    const std::uint8_t op = in.byte();
    const std::string stream = streams[(op >> 4) & 1];
    const std::uint64_t incarnation = 1 + ((op >> 5) & 1);
    message m;
    switch (op & 0x0F) {
      case 0:
        machine.follow(stream, now);
        break;
      case 1:
        machine.on_message((op & 0x80) ? frs::fetch_port : frs::live_port, in.counted_message(), now);
        break;
      case 2: {
        const std::uint64_t seq = 1 + in.byte();
        frs::write_live(m, stream, incarnation, seq, 1000 * seq, in.frame_bytes());
        machine.on_message(frs::live_port, std::move(m), now);
        break;
      }
      case 3:
        if (op & 0x80)
          frs::write_heartbeat(m, incarnation, 1000);
        else
          frs::write_beacon(m, stream, incarnation, in.byte());
        machine.on_message(frs::live_port, std::move(m), now);
        break;
      case 4: {  // an answer to a FETCH the machine sent
        if (out.fetches.empty()) break;
        const fetch_sent f = out.fetches[in.byte() % out.fetches.size()];
        const std::uint8_t how = in.byte();
        // Sometimes later than asked (a gap). A FETCH-TIME's `from` is a time: answered from 1.
        std::uint64_t from = f.from + how % 3;
        if (from == 0 || from > (std::uint64_t{1} << 62)) from = 1;
        switch ((how >> 2) % 4) {
          case 0: {
            frs::batch_writer w(m, "subscriber", f.request, incarnation, from);
            const std::size_t count = 1 + in.byte() % f.max_count;
            for (std::size_t i = 0; i < count; ++i) w.add(1000 * (from + i), in.frame_bytes());
            w.finish();
            break;
          }
          case 1: frs::write_end(m, "subscriber", f.request, incarnation, {from, in.byte()}); break;
          case 2: frs::write_gone(m, "subscriber", f.request, incarnation, {from, from + 1 + in.byte() % 8}); break;
          default: frs::write_refuse(m, "subscriber", f.request, {"no-stream", "not here"}); break;
        }
        machine.on_message(frs::fetch_port, answer(std::move(m)), now);
        break;
      }
      case 5:
        now += std::chrono::milliseconds(20 * std::size_t{in.byte()});
        if (now >= machine.next_tick()) machine.on_tick(now);
        break;
      case 6:
        journal.drain();
        machine.on_drained(now);
        break;
      case 7:
        out.failing = !out.failing;
        break;
      case 8:
        journal.failing_loads = !journal.failing_loads;
        break;
      default:
        if (now >= machine.next_tick()) machine.on_tick(now);
        break;
    }
  }
  (void)machine.stream_stats();
  return 0;
}
