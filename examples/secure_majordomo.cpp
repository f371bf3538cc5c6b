// CURVE from end to end: a Majordomo broker that admits only the keys in its allowlist directory.
// The example makes certificates for the broker, a worker and a client (what fabric-keygen
// writes), serves one request, shows that a stranger's request gets nothing and is counted, then
// enrols the stranger, reloads the allowlist (what fabric-broker does on SIGHUP) and serves it.
#include <fabric/fabric.hpp>
#include <fabric/majordomo.hpp>
#include <fabric/security.hpp>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "example_support.hpp"

using namespace fabric_examples;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// A fresh key pair saved as NAME and NAME_secret in `dir`, as fabric-keygen would.
fabric::curve_keypair make_certificate(const fs::path& dir, const std::string& name) {
  const fabric::curve_keypair keys = fabric::curve_keypair::generate();
  fabric::save_curve_certificate({keys.public_key, keys.secret_key, {{"name", name}}}, dir / name);
  return keys;
}

// One request to "greet" as the holder of `secret_file`; the reply, or "" when none came.
std::string ask(fabric::context& ctx, const std::string& broker, const fs::path& secret_file,
                const fs::path& broker_certificate) {
  fabric::mdp::client_options o{.broker = broker, .timeout = 500ms, .retries = 0};
  o.socket.security = fabric::curve_client{fabric::load_curve_keypair(secret_file),
                                           fabric::load_curve_public_key(broker_certificate.string())};
  fabric::mdp::client c(ctx, o);
  auto reply = c.request("greet", fabric::make_message("hello"));
  return reply ? std::string(reply->view(0)) : std::string();
}

void run() {
  fabric::support::temp_dir dir("fabric-secure-majordomo-");
  const fs::path keys = dir.path() / "keys";
  const fs::path allow = dir.path() / "allowed-clients";
  fs::create_directories(keys);
  fs::create_directories(allow);
  const auto broker_keys = make_certificate(keys, "broker");
  make_certificate(keys, "worker");
  make_certificate(keys, "alice");
  const auto mallory = make_certificate(keys, "mallory");
  // The allowlist holds public certificates: the worker's and alice's, not mallory's.
  for (const char* name : {"worker", "alice"}) fs::copy_file(keys / name, allow / name);
  std::printf("keys: broker %s; allowlist: worker, alice\n", broker_keys.public_key.c_str());

  fabric::context ctx;
  ctx.set_log([](fabric::log_level, std::string_view line) {
    std::printf("broker log: %.*s\n", static_cast<int>(line.size()), line.data());
  });
  fabric::mdp::broker_options bo;
  bo.endpoints = {"tcp://127.0.0.1:*"};
  bo.socket.security = fabric::curve_server{fabric::load_curve_keypair(keys / "broker"), "fabric", allow};
  fabric::mdp::broker broker(ctx, bo);
  const std::string endpoint = broker.endpoints().at(0);
  std::printf("broker: serving on %s with CURVE\n", endpoint.c_str());

  std::atomic<bool> failed{false};
  std::jthread worker([&](std::stop_token stop) {
    try {
      fabric::mdp::worker_options wo{.broker = endpoint, .service = "greet", .heartbeat_interval = 250ms};
      wo.socket.security = fabric::curve_client{fabric::load_curve_keypair(keys / "worker"),
                                                broker_keys.public_key};
      fabric::mdp::worker w(ctx, wo);
      fabric::mdp::worker::request req;
      while (!stop.stop_requested()) {
        if (!w.recv(req, 50ms)) continue;
        (void)w.reply(req, fabric::make_message("hello, authenticated peer"));
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "worker: FAILED: %s\n", e.what());
      failed = true;
    }
  });

  // Alice is allowed: her request goes through, encrypted both ways.
  std::string reply;
  for (int attempt = 0; attempt < 10 && reply.empty(); ++attempt)  // until the worker is up
    reply = ask(ctx, endpoint, keys / "alice", keys / "broker");
  check(!reply.empty(), "alice got no reply");
  std::printf("alice: %s\n", reply.c_str());

  // Mallory is not: the handshake is refused, nothing reaches the broker, nothing comes back.
  const auto denied_before = ctx.auth_stats().denied;
  check(ask(ctx, endpoint, keys / "mallory", keys / "broker").empty(), "mallory was served");
  check(ctx.auth_stats().denied > denied_before, "mallory's refusal was not counted");
  std::printf("mallory: no reply (refused handshakes so far: %llu)\n",
              static_cast<unsigned long long>(ctx.auth_stats().denied));

  // Enrol mallory and reload, as `kill -HUP` does for fabric-broker.
  fs::copy_file(keys / "mallory", allow / "mallory");
  const fabric::allowlist_reload r = ctx.reload_curve_allowlists();
  check(r.errors.empty(), "the allowlist did not reload");
  std::printf("reload: %zu keys allowed now\n", r.keys);
  reply = ask(ctx, endpoint, keys / "mallory", keys / "broker");
  check(!reply.empty(), "mallory got no reply once enrolled");
  std::printf("mallory (%s...): %s\n", mallory.public_key.substr(0, 8).c_str(), reply.c_str());

  worker.request_stop();
  worker.join();
  check(!failed, "the worker failed");
}

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: fabric-example-secure-majordomo [--help]\n"
               "A Majordomo broker with CURVE admits the worker and the client in its allowlist\n"
               "directory, refuses a stranger, then serves the stranger once enrolled and reloaded.\n");
}

}  // namespace

int main(int argc, char** argv) {
  const command_line cl{.program = "fabric-example-secure-majordomo", .print_usage = usage};
  return run_example(cl, argc, argv, [] { run(); });
}
