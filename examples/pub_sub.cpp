// Publish/subscribe: a publisher of sensor readings and two subscribers with different topic
// prefixes. A probe handshake makes sure neither subscriber misses the first reading.
#include <fabric/fabric.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "example_support.hpp"

using namespace fabric_examples;

namespace {

using namespace std::chrono_literals;

// Control topics start with '$' so no data prefix can match them by accident.
constexpr std::string_view control_prefix = "$";
constexpr std::string_view probe_topic = "$probe";
constexpr std::string_view end_topic = "$end";

struct reading {
  std::string topic;
  std::string value;
  friend bool operator==(const reading&, const reading&) = default;
};

// What the publisher sends, in order: three rounds over five sensors.
std::vector<reading> make_readings() {
  const std::vector<std::string> sensors = {"temp/kitchen", "temp/garage", "humidity/kitchen",
                                            "humidity/garage", "pressure/roof"};
  std::vector<reading> out;
  for (int round = 0; round < 3; ++round) {
    for (std::size_t i = 0; i < sensors.size(); ++i)
      out.push_back({sensors[i], std::to_string(10 * round + static_cast<int>(i))});
  }
  return out;
}

struct listener {
  std::string name;
  std::vector<std::string> prefixes;

  bool wants(std::string_view topic) const {
    for (const auto& p : prefixes)
      if (topic.starts_with(p)) return true;
    return false;
  }
};

// A subscriber thread's life: subscribe, connect, answer the first probe on the sync channel,
// then collect readings until the end marker.
std::vector<reading> listen(fabric::context& ctx, const listener& me, const std::string& data,
                            const std::string& sync_address) {
  fabric::subscriber sub(ctx);
  for (const auto& p : me.prefixes) sub.subscribe(p);
  sub.subscribe(control_prefix);
  sub.connect(data);
  fabric::pusher sync(ctx);
  sync.connect(sync_address);

  bool announced = false;
  std::vector<reading> received;
  fabric::message m;
  for (;;) {
    if (auto r = sub.recv(m, patience); !r)
      fail(me.name + ": nothing published within 5 s: " + r.error().message());
    check(m.size() == 2, me.name + ": expected [topic, value] messages");
    const std::string_view topic = m.view(0);
    if (topic == probe_topic) {
      // Probes keep coming until every subscriber has answered; only the first one matters.
      if (!announced) {
        if (auto s = sync.send(fabric::make_frame(me.name), patience); !s)
          fail(me.name + ": cannot report readiness: " + s.error().message());
        announced = true;
      }
      continue;
    }
    if (topic == end_topic) return received;
    received.push_back({std::string(topic), std::string(m.view(1))});
    std::printf("%-16s <- %-17s %s\n", me.name.c_str(), received.back().topic.c_str(),
                received.back().value.c_str());
  }
}

// A PUB socket drops messages for subscriptions that have not reached it yet, and nothing tells
// the publisher when they have. So it publishes a probe until every subscriber says, on a
// separate PUSH/PULL channel, that one came through; from then on nothing is lost.
void wait_for_subscribers(fabric::publisher& pub, fabric::puller& sync,
                          std::size_t subscribers) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  std::set<std::string> ready;
  fabric::message m;
  while (ready.size() < subscribers) {
    check(std::chrono::steady_clock::now() < deadline, "publisher: subscribers not ready in 5 s");
    if (auto p = pub.publish(probe_topic, ""); !p)
      fail("publisher: cannot publish a probe: " + p.error().message());
    // The bounded receive paces the probes while nobody has answered yet.
    if (auto r = sync.recv(m, 10ms); r) {
      ready.emplace(m.view(0));
      std::printf("publisher: %s is subscribed\n", std::string(m.view(0)).c_str());
    } else if (!r.is(fabric::errc::timeout)) {
      fail("publisher: sync channel failed: " + r.error().message());
    }
  }
}

struct outcome {
  std::vector<reading> received;
  bool failed = false;
};

void run(transport kind) {
  const endpoints where("pub-sub", kind);
  fabric::context ctx;
  fabric::publisher pub(ctx);
  const std::string data_address = pub.bind(where.bind_address("readings"));
  fabric::puller sync(ctx);
  const std::string sync_address = sync.bind(where.bind_address("sync"));
  std::printf("publisher: publishing on %s\n", data_address.c_str());

  const std::vector<listener> listeners = {
      {"thermostat", {"temp/"}},
      {"kitchen-display", {"temp/kitchen", "humidity/kitchen"}},
  };
  const std::vector<reading> readings = make_readings();
  std::vector<outcome> outcomes(listeners.size());
  {
    std::vector<std::jthread> threads;
    for (std::size_t i = 0; i < listeners.size(); ++i) {
      threads.emplace_back([&, i] {
        try {
          outcomes[i].received = listen(ctx, listeners[i], data_address, sync_address);
        } catch (const std::exception& e) {
          // Reported as it happens: the publisher only sees the effect, a missing answer.
          std::fprintf(stderr, "pub_sub: FAILED: %s\n", e.what());
          outcomes[i].failed = true;
        }
      });
    }
    wait_for_subscribers(pub, sync, listeners.size());
    for (const auto& [topic, value] : readings) {
      if (auto p = pub.publish(topic, value); !p)
        fail("publisher: cannot publish: " + p.error().message());
    }
    if (auto p = pub.publish(end_topic, ""); !p)
      fail("publisher: cannot publish the end marker: " + p.error().message());
    std::printf("publisher: published %zu readings\n", readings.size());
  }  // joins the subscribers

  for (std::size_t i = 0; i < listeners.size(); ++i) {
    check(!outcomes[i].failed, listeners[i].name + " failed");
    // Exactly the matching readings, in publication order: none missed, none extra.
    std::vector<reading> expected;
    for (const auto& r : readings)
      if (listeners[i].wants(r.topic)) expected.push_back(r);
    check(outcomes[i].received == expected,
          listeners[i].name + ": received " + std::to_string(outcomes[i].received.size()) +
              " readings, expected exactly " + std::to_string(expected.size()));
    std::printf("%s: got all %zu matching readings, in order\n", listeners[i].name.c_str(),
                expected.size());
  }
}

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: fabric-example-pub-sub [--transport inproc|ipc|tcp] [--help]\n"
               "  A publisher sends sensor readings under topics; two subscribers with different\n"
               "  prefix filters check they got exactly their readings. Default transport: tcp\n"
               "  on 127.0.0.1 with a port the OS picks.\n");
}

}  // namespace

int main(int argc, char** argv) {
  transport kind = transport::tcp;
  return run_example({.program = "pub_sub", .print_usage = print_usage, .kind = &kind},
                     argc, argv, [&] { run(kind); });
}
