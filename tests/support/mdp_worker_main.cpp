// A Majordomo worker in a process of its own, for tests that kill or pause a worker: it prints
// "ready" once registered with the broker's socket, then "request <first body frame>" for every
// request. In echo mode it answers with the request's body; in hold mode it never answers (but
// keeps heartbeating), standing for a worker in the middle of a long job.
//
// usage: fabric-test-mdp-worker <broker-endpoint> <service> <heartbeat-ms> echo|hold
#include <fabric/context.hpp>
#include <fabric/majordomo_worker.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s <broker-endpoint> <service> <heartbeat-ms> echo|hold\n", argv[0]);
    return 64;
  }
  const std::string_view mode = argv[4];
  if (mode != "echo" && mode != "hold") {
    std::fprintf(stderr, "mode must be echo or hold\n");
    return 64;
  }
  fabric::context ctx;
  fabric::mdp::worker_options o;
  o.broker = argv[1];
  o.service = argv[2];
  o.heartbeat_interval = std::chrono::milliseconds(std::atoi(argv[3]));
  o.reconnect_interval = o.heartbeat_interval;
  o.reconnect_interval_max = o.heartbeat_interval;
  fabric::mdp::worker w(ctx, o);
  std::printf("ready\n");
  std::fflush(stdout);
  fabric::mdp::worker::request req;
  // Runs until killed; a test that forgets it is covered by child_process's destructor.
  for (;;) {
    auto r = w.recv(req, std::chrono::seconds(60));
    if (!r) {
      if (r.is(fabric::errc::timeout)) continue;
      std::fprintf(stderr, "recv: %s\n", r.error().message().c_str());
      return 1;
    }
    const std::string first = req.body.empty() ? std::string() : std::string(req.body.view(0));
    std::printf("request %s\n", first.c_str());
    std::fflush(stdout);
    if (mode == "hold") {
      // In the middle of a long job: never answer, never ask for more (asking would give this
      // request back). The worker keeps heartbeating on its own thread meanwhile.
      for (;;) ::pause();
    }
    (void)w.reply(req, std::move(req.body));
  }
}
