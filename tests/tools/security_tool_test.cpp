// Tests the daemons' security as a user meets it: fabric-keygen's certificates, fabric-broker with
// CURVE (allowed keys served, unknown keys and NULL peers refused, counted and logged, the
// allowlist read again on SIGHUP), the warning of a daemon run without keys, and fabric-titanic
// and fabric-broker --titanic connecting with CURVE.
#include <fabric/context.hpp>
#include <fabric/majordomo_client.hpp>
#include <fabric/majordomo_worker.hpp>
#include <fabric/message.hpp>
#include <fabric/security.hpp>
#include <fabric/socket.hpp>
#include <fabric/titanic_client.hpp>

#include "support/process.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using fabric::curve_keypair;
using fabric::testing::child_process;
using fabric::testing::command;
using fabric::testing::temp_dir;
using namespace std::chrono_literals;

#if defined(FABRIC_KEYGEN_TOOL) && defined(FABRIC_BROKER_TOOL) && defined(FABRIC_TITANIC_TOOL)
constexpr std::string_view keygen_path = FABRIC_KEYGEN_TOOL;
constexpr std::string_view broker_path = FABRIC_BROKER_TOOL;
constexpr std::string_view titanic_path = FABRIC_TITANIC_TOOL;
#else
constexpr std::string_view keygen_path;  // tools not built: every test skips
constexpr std::string_view broker_path;
constexpr std::string_view titanic_path;
#endif

constexpr std::chrono::milliseconds bound = 15s;

struct run_result {
  int code = -1;
  std::string out;
  std::string err;
};

run_result run(std::string_view path, const std::vector<std::string>& args) {
  child_process p(command(path, args));
  const int code = p.finish();
  return {code, p.out, p.err};
}

// Waits until the child's stderr holds `text` (its log lines), within the bound.
bool await_log(child_process& p, std::string_view text) {
  return p.read_until([&](std::string_view) { return p.err.find(text) != std::string::npos; }, bound);
}

std::string endpoint_of(child_process& broker) { return fabric::testing::listening_endpoint(broker, bound); }

// The last value of `"name":N` in the child's stderr, or 0.
std::uint64_t last_counter(const std::string& err, const std::string& name) {
  const std::string key = "\"" + name + "\":";
  const auto at = err.rfind(key);
  if (at == std::string::npos) return 0;
  return std::stoull(err.substr(at + key.size()));
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 0777;
}

// An echo worker of `service` on its own thread, with the given security.
class echo_worker {
 public:
  echo_worker(fabric::context& ctx, const std::string& broker, const std::string& service,
              fabric::security_options security)
      : worker_(ctx, options(broker, service, std::move(security))),
        thread_([this](std::stop_token stop) {
          while (!stop.stop_requested()) {
            auto req = worker_.recv(20ms);
            if (!req) continue;
            const std::string body(req->body.empty() ? "" : req->body.view(0));
            (void)worker_.reply(*req, fabric::make_message("echo:" + body));
          }
        }) {}

 private:
  static fabric::mdp::worker_options options(const std::string& broker, const std::string& service,
                                             fabric::security_options security) {
    fabric::mdp::worker_options o{.broker = broker, .service = service, .heartbeat_interval = 100ms};
    o.socket.security = std::move(security);
    return o;
  }
  fabric::mdp::worker worker_;
  std::jthread thread_;
};

class SecurityToolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (keygen_path.empty()) GTEST_SKIP() << "the tools are not built";
    allow = dir.sub("allow");
  }

  // Makes a key pair with fabric-keygen at `path`; returns it as loaded back.
  curve_keypair keygen(const fs::path& path) {
    const auto r = run(keygen_path, {path.string(), "--quiet"});
    EXPECT_EQ(r.code, 0) << r.err;
    const curve_keypair keys = fabric::load_curve_keypair(path);
    EXPECT_EQ(r.out, keys.public_key + "\n");
    return keys;
  }

  // A client key pair whose public certificate is in the broker's allowlist.
  curve_keypair enrolled(const std::string& name) {
    const curve_keypair keys = keygen(dir.path() / name);
    fs::copy_file(dir.path() / name, allow / name);
    return keys;
  }

  fabric::mdp::client client(const std::string& endpoint, fabric::security_options security,
                             std::uint32_t retries = 3) {
    fabric::mdp::client_options o{.broker = endpoint, .timeout = 1000ms, .retries = retries};
    o.socket.security = std::move(security);
    return fabric::mdp::client(ctx, o);
  }

  // One echo round trip through the broker at `endpoint` with `security`.
  bool round_trip(const std::string& endpoint, fabric::security_options security, std::uint32_t retries = 3) {
    auto c = client(endpoint, std::move(security), retries);
    auto reply = c.request("echo", fabric::make_message("hi"));
    return reply && reply->view(0) == "echo:hi";
  }

  fabric::curve_client as(const curve_keypair& keys) const { return {keys, server.public_key}; }

  // fabric-broker on a free loopback port with CURVE: the key pair made at dir/server, the
  // allowlist directory, and `extra` arguments.
  std::vector<std::string> curve_broker(const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> a{"--bind", "tcp://127.0.0.1:*", "--heartbeat", "100ms", "--curve-secret",
                               (dir.path() / "server_secret").string(), "--curve-allow", allow.string()};
    a.insert(a.end(), extra.begin(), extra.end());
    return command(broker_path, a);
  }

  temp_dir dir;
  fs::path allow;
  curve_keypair server;
  fabric::context ctx;
};

TEST_F(SecurityToolTest, KeygenWritesACertificatePairAndPrintsThePublicKey) {
  const fs::path p = dir.path() / "node";
  const auto made = run(keygen_path, {p.string(), "--meta", "name=node-1"});
  ASSERT_EQ(made.code, 0) << made.err;
  EXPECT_EQ(mode_of(p), 0644u);
  EXPECT_EQ(mode_of(p.string() + "_secret"), 0600u);
  const fabric::curve_certificate cert = fabric::load_curve_certificate(p);
  EXPECT_NE(made.out.find(cert.public_key), std::string::npos) << made.out;
  ASSERT_EQ(cert.metadata.size(), 1u);
  EXPECT_EQ(cert.metadata[0].second, "node-1");
  EXPECT_EQ(fabric::load_curve_keypair(p).public_key, cert.public_key);

  const auto shown = run(keygen_path, {"--show", p.string() + "_secret"});
  EXPECT_EQ(shown.code, 0) << shown.err;
  EXPECT_EQ(shown.out, cert.public_key + "\n");

  const auto again = run(keygen_path, {p.string()});
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.err.find("exists"), std::string::npos) << again.err;
  EXPECT_EQ(fabric::load_curve_certificate(p).public_key, cert.public_key) << "overwritten";
  const auto forced = run(keygen_path, {p.string(), "--force", "--quiet"});
  EXPECT_EQ(forced.code, 0) << forced.err;
  EXPECT_NE(fabric::load_curve_certificate(p).public_key, cert.public_key);

  const auto help = run(keygen_path, {"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("_secret"), std::string::npos) << help.out;
  EXPECT_EQ(run(keygen_path, {}).code, 64);
  EXPECT_EQ(run(keygen_path, {p.string(), "--meta", "novalue"}).code, 64);
}

TEST_F(SecurityToolTest, BrokerWithoutKeysWarnsInItsFirstLogLine) {
  child_process broker(command(broker_path, {"--bind", "tcp://127.0.0.1:*"}));
  ASSERT_FALSE(endpoint_of(broker).empty()) << broker.err;
  ASSERT_TRUE(await_log(broker, "serving")) << broker.err;
  const std::string first = broker.err.substr(0, broker.err.find('\n'));
  EXPECT_NE(first.find("unauthenticated and unencrypted"), std::string::npos) << broker.err;
  EXPECT_NE(first.find("127.0.0.1"), std::string::npos) << first;
}

TEST_F(SecurityToolTest, BrokerFlagsAreCheckedBeforeItServes) {
  server = keygen(dir.path() / "server");
  const std::string secret = (dir.path() / "server_secret").string();
  // Each key flag needs its partner; a secret file open to others is refused with the fix.
  EXPECT_EQ(run(broker_path, {"--curve-secret", secret}).code, 64);
  EXPECT_EQ(run(broker_path, {"--curve-allow", allow.string()}).code, 64);
  fs::permissions(secret, fs::perms(0644));
  const auto open = run(broker_path, {"--bind", "tcp://127.0.0.1:*", "--curve-secret", secret,
                                      "--curve-allow", allow.string()});
  EXPECT_EQ(open.code, 1);
  EXPECT_NE(open.err.find("chmod 600"), std::string::npos) << open.err;
}

TEST_F(SecurityToolTest, CurveBrokerServesAllowedKeysOnlyAndReloadsOnSighup) {
  server = keygen(dir.path() / "server");
  const curve_keypair worker_keys = enrolled("worker");
  const curve_keypair alice = enrolled("alice");
  child_process broker(curve_broker());
  const std::string endpoint = endpoint_of(broker);
  ASSERT_FALSE(endpoint.empty()) << broker.err;
  ASSERT_TRUE(await_log(broker, "serving")) << broker.err;
  const std::string first = broker.err.substr(0, broker.err.find('\n'));
  EXPECT_NE(first.find("CURVE on: public key " + server.public_key), std::string::npos) << first;
  EXPECT_NE(first.find("2 client key(s)"), std::string::npos) << first;

  echo_worker echo(ctx, endpoint, "echo", as(worker_keys));
  EXPECT_TRUE(round_trip(endpoint, as(alice)));

  // An unknown key gets nothing back, and is logged with its key.
  const curve_keypair bob = keygen(dir.path() / "bob");
  EXPECT_FALSE(round_trip(endpoint, as(bob), 1));
  EXPECT_TRUE(await_log(broker, "refused a CURVE client with key " + bob.public_key)) << broker.err;
  // A peer without CURVE gets nothing back either, and is logged.
  EXPECT_FALSE(round_trip(endpoint, {}, 1));
  EXPECT_TRUE(await_log(broker, "refused a peer on")) << broker.err;

  // Bob is enrolled and alice removed; SIGHUP makes it so.
  fs::copy_file(dir.path() / "bob", allow / "bob");
  fs::remove(allow / "alice");
  broker.signal(SIGHUP);
  ASSERT_TRUE(await_log(broker, "2 client key(s) allowed after reload")) << broker.err;
  EXPECT_TRUE(round_trip(endpoint, as(bob)));
  EXPECT_FALSE(round_trip(endpoint, as(alice), 1));

  broker.signal(SIGTERM);
  EXPECT_EQ(broker.finish(), 0) << broker.err;
}

TEST_F(SecurityToolTest, FloodOfUnknownPeersIsRefusedCountedAndLeaksNothing) {
  server = keygen(dir.path() / "server");
  const curve_keypair worker_keys = enrolled("worker");
  const curve_keypair alice = enrolled("alice");
  child_process broker(curve_broker({"--stats-interval", "50ms"}));
  const std::string endpoint = endpoint_of(broker);
  ASSERT_FALSE(endpoint.empty()) << broker.err;
  echo_worker echo(ctx, endpoint, "echo", as(worker_keys));
  ASSERT_TRUE(round_trip(endpoint, as(alice)));
  const std::size_t fds_before = fabric::testing::open_fds(broker.pid());

  // 40 CURVE clients with keys in no allowlist and 40 NULL peers, all at once.
  constexpr int each = 40;
  const auto started = std::chrono::steady_clock::now();
  {
    std::vector<fabric::any_socket> hostile;
    for (int i = 0; i < each; ++i) {
      fabric::socket_options curve{.linger = 0ms, .reconnect_interval = 1000ms};
      curve.security = as(curve_keypair::generate());
      hostile.emplace_back(ctx, zmq::socket_type::dealer, curve);
      hostile.emplace_back(ctx, zmq::socket_type::dealer,
                           fabric::socket_options{.linger = 0ms, .reconnect_interval = 1000ms});
    }
    for (auto& s : hostile) {
      s.connect(endpoint);
      (void)s.send(fabric::make_message("", "MDPC01", "echo", "let me in"));
    }
    // Every one of them refused and counted, read from the broker's own counters.
    ASSERT_TRUE(broker.read_until(
        [&](std::string_view) {
          return last_counter(broker.err, "denied") >= each &&
                 last_counter(broker.err, "refused_handshakes") >= each;
        },
        bound))
        << broker.err;
  }
  const auto flood_seconds =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started).count();
  // Rate-limited: at most one line per kind per second, however many peers were refused.
  std::size_t lines = 0;
  for (std::size_t at = broker.err.find("refused a "); at != std::string::npos; at = broker.err.find("refused a ", at + 1))
    ++lines;
  EXPECT_LE(lines, static_cast<std::size_t>(2 * (flood_seconds + 2))) << broker.err;
  // The refused connections are closed, and their descriptors with them.
  EXPECT_TRUE(broker.read_until([&](std::string_view) { return fabric::testing::open_fds(broker.pid()) <= fds_before + 2; }, bound))
      << fabric::testing::open_fds(broker.pid()) << " descriptors open, " << fds_before << " before the flood";
  // Nothing reached the service, and an allowed client is still served.
  EXPECT_TRUE(round_trip(endpoint, as(alice)));
  broker.signal(SIGTERM);
  EXPECT_EQ(broker.finish(), 0) << broker.err;
}

TEST_F(SecurityToolTest, SilentConnectionsAreClosedAfterTheHandshakeTimeout) {
  child_process broker(command(broker_path, {"--bind", "tcp://127.0.0.1:*", "--handshake-timeout", "200ms"}));
  const std::string endpoint = endpoint_of(broker);
  ASSERT_FALSE(endpoint.empty()) << broker.err;
  ASSERT_TRUE(await_log(broker, "serving")) << broker.err;
  const std::size_t fds_before = fabric::testing::open_fds(broker.pid());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1))));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::vector<int> silent;
  for (int i = 0; i < 20; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    silent.push_back(fd);
    ASSERT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  }
  // The broker closes every one of them while they are still open at this end: each reads EOF
  // (after the greeting libzmq sent), and the broker's descriptors return.
  for (const int fd : silent) {
    pollfd p{fd, POLLIN, 0};
    char buf[256];
    bool closed = false;
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (!closed && std::chrono::steady_clock::now() < deadline) {
      if (::poll(&p, 1, 1000) <= 0) continue;
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      closed = n <= 0;
    }
    EXPECT_TRUE(closed) << "a silent connection was left open";
  }
  EXPECT_TRUE(broker.read_until([&](std::string_view) { return fabric::testing::open_fds(broker.pid()) <= fds_before; }, bound))
      << fabric::testing::open_fds(broker.pid()) << " descriptors open, " << fds_before << " before";
  for (const int fd : silent) ::close(fd);
}

TEST_F(SecurityToolTest, TitanicConnectsToACurveBroker) {
  server = keygen(dir.path() / "server");
  const curve_keypair titanic_keys = enrolled("titanic");
  const curve_keypair worker_keys = enrolled("worker");
  const curve_keypair alice = enrolled("alice");
  child_process broker(curve_broker());
  const std::string endpoint = endpoint_of(broker);
  ASSERT_FALSE(endpoint.empty()) << broker.err;
  // The server key given as its public certificate file.
  child_process titanic(command(titanic_path, {"--broker", endpoint, "--journal", (dir.path() / "j").string(),
                                               "--heartbeat", "100ms", "--curve-secret",
                                               (dir.path() / "titanic").string(), "--curve-server-key",
                                               (dir.path() / "server").string()}));
  ASSERT_TRUE(titanic.read_until("serving\n", bound)) << titanic.err;
  EXPECT_NE(titanic.err.find("CURVE on: public key " + titanic_keys.public_key), std::string::npos)
      << titanic.err;
  echo_worker echo(ctx, endpoint, "echo", as(worker_keys));

  fabric::titanic::client_options o{.broker = endpoint, .correlate = true};
  o.socket.security = as(alice);
  fabric::titanic::client c(ctx, o);
  auto reply = c.call("echo", fabric::make_message("stored"), bound);
  ASSERT_TRUE(reply) << reply.error().message() << "\n" << titanic.err;
  ASSERT_FALSE(reply->body.empty());
  EXPECT_EQ(reply->body.view(0), "echo:stored");

  titanic.signal(SIGTERM);
  EXPECT_EQ(titanic.finish(), 0) << titanic.err;
}

TEST_F(SecurityToolTest, BrokerWithTitanicInsideUsesItsOwnKey) {
  server = keygen(dir.path() / "server");
  const curve_keypair worker_keys = enrolled("worker");
  const curve_keypair alice = enrolled("alice");
  child_process broker(curve_broker({"--titanic", (dir.path() / "j").string()}));
  const std::string endpoint = endpoint_of(broker);
  ASSERT_FALSE(endpoint.empty()) << broker.err;
  echo_worker echo(ctx, endpoint, "echo", as(worker_keys));
  fabric::titanic::client_options o{.broker = endpoint, .correlate = true};
  o.socket.security = as(alice);
  fabric::titanic::client c(ctx, o);
  auto reply = c.call("echo", fabric::make_message("inside"), bound);
  ASSERT_TRUE(reply) << reply.error().message() << "\n" << broker.err;
  ASSERT_FALSE(reply->body.empty());
  EXPECT_EQ(reply->body.view(0), "echo:inside");
}

}  // namespace
