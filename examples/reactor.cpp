// One reactor thread serving two sockets and a repeating timer: a small settings service run as a
// fabric::actor, which its owner talks to and finally stops through the actor's pipe.
#include <fabric/fabric.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "example_support.hpp"

using namespace fabric_examples;

namespace {

using namespace std::chrono_literals;

constexpr int ticks_wanted = 3;

// The service, on the actor's thread. Updates ([set, key, value] or [flush]) arrive on a PULL
// socket, lookups ([key]) on a REP socket, and a timer reports a heartbeat to the owner. The pipe
// carries the owner's commands: "stats", and the term command that ends the body.
void settings_service(fabric::pair_socket& pipe, fabric::context& ctx, const endpoints& where) {
  fabric::replier lookups(ctx);
  const std::string lookups_address = lookups.bind(where.bind_address("lookups"));
  fabric::puller updates(ctx);
  const std::string updates_address = updates.bind(where.bind_address("updates"));

  std::map<std::string, std::string, std::less<>> settings;
  std::size_t lookups_served = 0;
  std::size_t updates_applied = 0;
  int ticks = 0;

  // Everything the body says to its owner goes through here, with a bounded send so that an
  // owner that stopped listening fails the service instead of hanging it.
  auto tell_owner = [&pipe](fabric::message&& m) {
    if (auto s = pipe.send(std::move(m), patience); !s)
      fail("service: cannot reach the owner: " + s.error().message());
  };

  fabric::reactor loop;
  loop.add(lookups, [&] {
    fabric::message m;
    if (!lookups.try_recv(m)) return;
    const auto it = m.size() == 1 ? settings.find(m.view(0)) : settings.end();
    fabric::message reply =
        it == settings.end() ? fabric::make_message("?") : fabric::make_message("=", it->second);
    if (auto s = lookups.send(std::move(reply), patience); !s)
      fail("service: cannot answer a lookup: " + s.error().message());
    ++lookups_served;
  });
  loop.add(updates, [&] {
    fabric::message m;
    if (!updates.try_recv(m)) return;
    if (m.size() == 3 && m.view(0) == "set") {
      settings.insert_or_assign(std::string(m.view(1)), std::string(m.view(2)));
      ++updates_applied;
    } else if (m.size() == 1 && m.view(0) == "flush") {
      // Messages from one PUSH socket arrive in order, so every earlier update is applied.
      tell_owner(fabric::make_message("flushed", std::to_string(updates_applied)));
    }
  });
  loop.add(pipe, [&] {
    fabric::message m;
    if (!pipe.try_recv(m)) return;
    if (fabric::actor::is_term(m)) {
      loop.stop();
    } else if (m.size() == 1 && m.view(0) == "stats") {
      tell_owner(fabric::make_message("stats", std::to_string(lookups_served),
                                      std::to_string(updates_applied), std::to_string(ticks)));
    }
  });
  fabric::timer_id heartbeat{};
  heartbeat = loop.every(20ms, [&] {
    ++ticks;
    tell_owner(fabric::make_message("tick", std::to_string(ticks)));
    if (ticks == ticks_wanted) loop.cancel(heartbeat);  // a timer may cancel itself
  });

  fabric::actor::signal_ready(pipe);
  tell_owner(fabric::make_message("listening", lookups_address, updates_address));
  if (auto r = loop.run(); !r) fail("service: reactor failed: " + r.error().message());
  std::printf("service: stopped (%zu lookups, %zu updates, %d ticks)\n", lookups_served,
              updates_applied, ticks);
}

// Receives the next message from the service on the pipe.
fabric::message from_service(fabric::actor& service) {
  auto m = service.pipe().recv(patience);
  if (!m) fail("owner: the service went quiet: " + m.error().message());
  check(!m->empty(), "owner: empty message from the service");
  return std::move(*m);
}

std::string lookup(fabric::requester& client, std::string_view key) {
  auto reply = client.request(fabric::make_message(key), patience);
  if (!reply)
    fail("owner: lookup of '" + std::string(key) + "' failed: " + reply.error().message());
  if (reply->size() == 2 && reply->view(0) == "=") return std::string(reply->view(1));
  return "(unknown)";
}

// The owner's side: feed updates, wait for the flush and the heartbeats, look values up.
void use_service(fabric::context& ctx, fabric::actor& service) {
  const fabric::message listening = from_service(service);
  check(listening.size() == 3 && listening.view(0) == "listening",
        "owner: expected the service's addresses first");
  const std::string lookups_address(listening.view(1));
  const std::string updates_address(listening.view(2));
  std::printf("owner: service listening on %s (lookups) and %s (updates)\n",
              lookups_address.c_str(), updates_address.c_str());

  fabric::requester client(ctx);
  client.connect(lookups_address);
  fabric::pusher feed(ctx, {.send_timeout = patience});
  feed.connect(updates_address);

  const std::vector<std::pair<std::string, std::string>> updates = {
      {"log.level", "debug"}, {"cache.size", "512"}, {"log.level", "info"}, {"region", "eu-west"}};
  for (const auto& [key, value] : updates) {
    if (auto s = feed.send(fabric::make_message("set", key, value)); !s)
      fail("owner: cannot send an update: " + s.error().message());
  }
  if (auto s = feed.send(fabric::make_message("flush")); !s)
    fail("owner: cannot send flush: " + s.error().message());

  // Wait, on the pipe, for the flush to be acknowledged and for the timer to have fired its
  // ticks; each receive is bounded, so a stuck service fails the example.
  bool flushed = false;
  int ticks = 0;
  while (!flushed || ticks < ticks_wanted) {
    const fabric::message m = from_service(service);
    if (m.view(0) == "tick") {
      ++ticks;
      std::printf("owner: heartbeat %d from the service's timer\n", ticks);
    } else if (m.view(0) == "flushed" && m.size() == 2) {
      flushed = true;
      std::printf("owner: service applied %s updates\n", std::string(m.view(1)).c_str());
      check(m.view(1) == std::to_string(updates.size()), "owner: updates were lost");
    } else {
      fail("owner: unexpected message '" + std::string(m.view(0)) + "' from the service");
    }
  }

  const std::vector<std::pair<std::string_view, std::string_view>> expected = {
      {"log.level", "info"}, {"cache.size", "512"}, {"region", "eu-west"}, {"colour", "(unknown)"}};
  for (const auto& [key, value] : expected) {
    const std::string got = lookup(client, key);
    std::printf("owner: %s = %s\n", std::string(key).c_str(), got.c_str());
    check(got == value, "owner: wrong value for '" + std::string(key) + "'");
  }

  // The timer cancelled itself after its last tick, so the next message must be the answer.
  if (auto s = service.pipe().send(fabric::make_message("stats"), patience); !s)
    fail("owner: cannot ask for stats: " + s.error().message());
  const fabric::message stats = from_service(service);
  check(stats.size() == 4 && stats.view(0) == "stats", "owner: expected a stats reply");
  std::printf("owner: stats: %s lookups, %s updates, %s ticks\n",
              std::string(stats.view(1)).c_str(), std::string(stats.view(2)).c_str(),
              std::string(stats.view(3)).c_str());
  check(stats.view(1) == std::to_string(expected.size()) &&
            stats.view(2) == std::to_string(updates.size()) &&
            stats.view(3) == std::to_string(ticks_wanted),
        "owner: the service's stats do not match what was sent");
}

// Stops the service (stop() sends the term command through the pipe and waits, bounded, for
// the body to return) and reports how it ended. Returns false when it failed or did not stop.
bool stop_service(fabric::actor& service) {
  const bool stopped = service.stop();
  if (auto failure = service.failure()) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "reactor: FAILED: %s\n", e.what());
    }
    return false;
  }
  if (!stopped) std::fprintf(stderr, "reactor: FAILED: the service did not stop when asked\n");
  return stopped;
}

void run(transport kind) {
  const endpoints where("reactor", kind);
  fabric::context ctx;

  // The constructor returns once the body has bound its sockets and called signal_ready.
  fabric::actor service(ctx,
                        [&](fabric::pair_socket& pipe) { settings_service(pipe, ctx, where); });
  try {
    use_service(ctx, service);
  } catch (...) {
    // A silent service is usually the effect of a failed one: report how it ended too.
    stop_service(service);
    throw;
  }
  check(stop_service(service), "the service failed");
}

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: fabric-example-reactor [--transport inproc|ipc|tcp] [--help]\n"
               "  An actor runs one reactor over a REP socket, a PULL socket and a timer; its\n"
               "  owner sends updates and lookups, then stops it through the actor pipe.\n"
               "  Default transport: tcp on 127.0.0.1 with a port the OS picks.\n");
}

}  // namespace

int main(int argc, char** argv) {
  transport kind = transport::tcp;
  return run_example({.program = "reactor", .print_usage = print_usage, .kind = &kind},
                     argc, argv, [&] { run(kind); });
}
