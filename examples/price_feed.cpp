// Durable pub/sub with replay: a pricing service journals and publishes ticks on three streams; a
// dashboard subscribed from the start takes the live feed, and a risk service that starts late
// catches up on the whole history by replay, then follows the live feed, with no gap and no
// duplicate, while prices keep coming.
#include <fabric/fabric.hpp>
#include <fabric/stream.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "example_support.hpp"

using namespace fabric_examples;

namespace {

const std::vector<std::string> instruments = {"prices.eurusd", "prices.gbpusd", "prices.usdjpy"};
constexpr std::uint64_t before_join = 2000;  // ticks per instrument before the risk service starts
constexpr std::uint64_t after_join = 1000;   // and after

// The tick on the wire, packed with msgpack.
struct tick {
  std::uint64_t n = 0;
  double price = 0;
  MSGPACK_DEFINE(n, price)
};

// What one subscriber saw, per stream: every sequence in order, and how many came by replay.
class book {
 public:
  void take(const fabric::stream_message& m) {
    std::lock_guard lock(mu_);
    auto& s = streams_[std::string(m.stream)];
    check(m.seq == s.next, std::string(m.stream) + ": got " + std::to_string(m.seq) + ", expected " +
                               std::to_string(s.next));
    const auto t = fabric::unpack<tick>(std::as_bytes(std::span(m.body.data(), m.body.size())));
    check(t && t->n == m.seq, "a tick that does not match its sequence");
    ++s.next;
    if (m.replayed) ++s.replayed;
    cv_.notify_all();
  }
  bool wait_all(std::uint64_t last) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, patience * 12, [&] {  // generous: a loaded machine runs it slowly
      for (const auto& name : instruments) {
        if (streams_[name].next <= last) return false;
      }
      return true;
    });
  }
  std::uint64_t replayed(const std::string& name) {
    std::lock_guard lock(mu_);
    return streams_[name].replayed;
  }

 private:
  struct position {
    std::uint64_t next = 1;
    std::uint64_t replayed = 0;
  };
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, position> streams_;
};

void publish(fabric::stream_publisher& pub, std::uint64_t from, std::uint64_t to) {
  for (std::uint64_t n = from; n <= to; ++n) {
    for (std::size_t i = 0; i < instruments.size(); ++i) {
      const tick t{n, 1.0 + static_cast<double>(i) + static_cast<double>(n % 100) / 10'000.0};
      const fabric::frame packed = fabric::pack(t);
      auto seq = pub.publish(instruments[i], fabric::view(packed));
      check(seq && *seq == n, "publish failed: " + (seq ? std::string("wrong sequence") : seq.error().message()));
    }
  }
}

void run(transport kind) {
  fabric::context ctx;
  endpoints where("price-feed", kind);
  fabric::support::temp_dir dir("fabric-price-feed-");
  fabric::journal j = fabric::journal::open(dir.path() / "pricing", {.mode = fabric::durability::periodic});
  fabric::stream_publisher pub(ctx, j, {.endpoint = where.bind_address("live"),
                                        .replay_endpoint = where.bind_address("replay"),
                                        .heartbeat = std::chrono::milliseconds(100)});

  // The dashboard follows every "prices." stream from its first tick.
  book dashboard;
  fabric::stream_subscriber dash(ctx, {.endpoint = pub.endpoint(),
                                       .replay_endpoint = pub.replay_endpoint(),
                                       .prefixes = {"prices."},
                                       .start = fabric::stream_start::from_seq(1),
                                       .on_message = [&](const fabric::stream_message& m) { dashboard.take(m); }});

  publish(pub, 1, before_join);
  // Once the dashboard has every tick so far, the live feed has sent them all: whatever the risk
  // service has of them, it fetched from the journal.
  check(dashboard.wait_all(before_join), "the dashboard did not get the first ticks");

  // The risk service starts now, with the whole history behind it.
  book risk;
  fabric::stream_subscriber late(ctx, {.endpoint = pub.endpoint(),
                                       .replay_endpoint = pub.replay_endpoint(),
                                       .streams = instruments,
                                       .start = fabric::stream_start::from_seq(1),
                                       .on_message = [&](const fabric::stream_message& m) { risk.take(m); }});
  publish(pub, before_join + 1, before_join + after_join);

  const std::uint64_t last = before_join + after_join;
  check(dashboard.wait_all(last), "the dashboard did not get every tick");
  check(risk.wait_all(last), "the risk service did not catch up");
  for (const auto& name : instruments) {
    std::printf("%-14s dashboard 1..%llu, risk 1..%llu (%llu of them by replay)\n", name.c_str(),
                static_cast<unsigned long long>(last), static_cast<unsigned long long>(last),
                static_cast<unsigned long long>(risk.replayed(name)));
    check(risk.replayed(name) >= before_join, "the late joiner should have fetched the history");
  }
}

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: fabric-example-price-feed [--transport inproc|ipc|tcp]\n"
               "A pricing service publishes ticks on three streams, journaled; a dashboard takes them\n"
               "live; a risk service starts late and catches up by replay, with no gap or duplicate.\n");
}

}  // namespace

int main(int argc, char** argv) {
  transport kind = transport::ipc;
  const command_line cl{.program = "fabric-example-price-feed", .print_usage = usage, .kind = &kind};
  return run_example(cl, argc, argv, [&] { run(kind); });
}
