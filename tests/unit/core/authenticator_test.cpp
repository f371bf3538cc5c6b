// Tests the context's authenticator beyond single keys: allowlist directories per ZAP domain and
// their reload, the count and rate-limited log of peers refused before ZAP (NULL and PLAIN peers),
// and the CURVE server's drop of messages without a User-Id.
#include <fabric/context.hpp>
#include <fabric/error.hpp>
#include <fabric/security.hpp>
#include <fabric/socket.hpp>

#include "core/zap.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>
#include <zmq.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace fabric {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::temp_dir;
using testing::eventually;
using testing::wait_bound;

constexpr std::chrono::milliseconds quiet_period{100};

// Saves a fresh key pair's public certificate into `dir` under `name`; returns the pair.
curve_keypair enrol(const fs::path& dir, const std::string& name) {
  const curve_keypair keys = curve_keypair::generate();
  save_curve_certificate({keys.public_key, keys.secret_key, {}}, dir / name);
  fs::remove(dir / (name + "_secret"));  // an allowlist holds public certificates only
  return keys;
}

struct captured_log {
  std::mutex mutex;
  std::vector<std::string> lines;
  log_fn fn() {
    return [this](log_level, std::string_view line) {
      std::lock_guard lock(mutex);
      lines.emplace_back(line);
    };
  }
  std::size_t count_with(std::string_view text) {
    std::lock_guard lock(mutex);
    std::size_t n = 0;
    for (const auto& l : lines) if (l.find(text) != std::string::npos) ++n;
    return n;
  }
};

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!zmq_has("curve")) GTEST_SKIP() << "libzmq was built without CURVE";
    server_keys = curve_keypair::generate();
    allow = dir.sub("allow");
  }

  // A CURVE server PULL on loopback, with no fabric::monitor (so the handshake watch keeps its
  // event feed).
  any_socket server(const std::string& domain = "fabric") {
    socket_options o;
    o.linger = 0ms;
    o.security = curve_server{server_keys, domain, allow};
    return any_socket(ctx, zmq::socket_type::pull, o);
  }
  any_socket client(const curve_keypair& keys) {
    socket_options o;
    o.linger = 0ms;
    o.reconnect_interval = 10ms;
    o.security = curve_client{keys, server_keys.public_key};
    return any_socket(ctx, zmq::socket_type::push, o);
  }
  // True when a message from `keys` reaches `pull` at `endpoint`.
  bool delivered(any_socket& pull, const std::string& endpoint, const curve_keypair& keys) {
    any_socket push = client(keys);
    push.connect(endpoint);
    if (!push.send(make_message("hello"))) return false;
    message m;
    return static_cast<bool>(pull.recv(m, wait_bound));
  }
  // True when the handler refuses `keys` and nothing reaches `pull`.
  bool refused(any_socket& pull, const std::string& endpoint, const curve_keypair& keys) {
    const std::uint64_t before = ctx.auth_stats().denied;
    any_socket push = client(keys);
    push.connect(endpoint);
    (void)push.send(make_message("hello"));
    if (!eventually([&] { return ctx.auth_stats().denied > before; })) return false;
    message m;
    return pull.recv(m, quiet_period).is(errc::timeout);
  }

  temp_dir dir;
  fs::path allow;
  context ctx;
  curve_keypair server_keys;
};

TEST_F(AuthenticatorTest, AllowlistDirectoryAdmitsItsClientsOnly) {
  const curve_keypair alice = enrol(allow, "alice");
  any_socket pull = server();
  const std::string ep = pull.bind("tcp://127.0.0.1:*");
  EXPECT_TRUE(delivered(pull, ep, alice));
  EXPECT_TRUE(refused(pull, ep, curve_keypair::generate()));
}

TEST_F(AuthenticatorTest, RouterServerDeliversAuthenticatedMessages) {
  // A ROUTER makes the routing-id frame itself: the User-Id check must not read that one.
  const curve_keypair alice = enrol(allow, "alice");
  socket_options so;
  so.linger = 0ms;
  so.security = curve_server{server_keys, "fabric", allow};
  any_socket router(ctx, zmq::socket_type::router, so);
  const std::string ep = router.bind("tcp://127.0.0.1:*");
  socket_options co;
  co.linger = 0ms;
  co.security = curve_client{alice, server_keys.public_key};
  any_socket dealer(ctx, zmq::socket_type::dealer, co);
  dealer.connect(ep);
  ASSERT_TRUE(dealer.send(make_message("a", "b")));
  message m;
  ASSERT_TRUE(router.recv(m, wait_bound));
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m.view(2), "b");
  EXPECT_EQ(router.dropped(), 0u);
}

TEST_F(AuthenticatorTest, ReloadAddsAndRemovesKeys) {
  const curve_keypair alice = enrol(allow, "alice");
  any_socket pull = server();
  const std::string ep = pull.bind("tcp://127.0.0.1:*");
  const curve_keypair bob = curve_keypair::generate();
  EXPECT_TRUE(refused(pull, ep, bob));

  save_curve_certificate({bob.public_key, bob.secret_key, {}}, allow / "bob");
  fs::remove(allow / "bob_secret");
  fs::remove(allow / "alice");
  const allowlist_reload r = ctx.reload_curve_allowlists();
  EXPECT_EQ(r.directories, 1u);
  EXPECT_EQ(r.keys, 1u);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_TRUE(delivered(pull, ep, bob));
  EXPECT_TRUE(refused(pull, ep, alice));
}

TEST_F(AuthenticatorTest, ReloadLeavesOutABrokenFileAndReportsIt) {
  const curve_keypair alice = enrol(allow, "alice");
  any_socket pull = server();
  const std::string ep = pull.bind("tcp://127.0.0.1:*");
  {
    std::FILE* f = std::fopen((allow / "broken").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("curve\n    public-key = \"short\"\n", f);
    std::fclose(f);
  }
  const allowlist_reload r = ctx.reload_curve_allowlists();
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].find("broken"), std::string::npos) << r.errors[0];
  EXPECT_EQ(r.keys, 1u);
  EXPECT_TRUE(delivered(pull, ep, alice));
}

TEST_F(AuthenticatorTest, ReloadRemovesKeysEvenWhileAnotherFileIsBroken) {
  const curve_keypair alice = enrol(allow, "alice");
  const curve_keypair bob = enrol(allow, "bob");
  any_socket pull = server();
  const std::string ep = pull.bind("tcp://127.0.0.1:*");
  fs::remove(allow / "alice");
  {
    std::FILE* f = std::fopen((allow / "half-copied").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("curve\n    public-key = \"", f);
    std::fclose(f);
  }
  const allowlist_reload r = ctx.reload_curve_allowlists();
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].find("half-copied"), std::string::npos) << r.errors[0];
  EXPECT_EQ(r.keys, 1u);
  EXPECT_TRUE(refused(pull, ep, alice));
  EXPECT_TRUE(delivered(pull, ep, bob));
}

TEST_F(AuthenticatorTest, ReloadKeepsTheKeysOfADirectoryThatCannotBeRead) {
  const curve_keypair alice = enrol(allow, "alice");
  any_socket pull = server();
  const std::string ep = pull.bind("tcp://127.0.0.1:*");
  fs::rename(allow, dir.path() / "moved");
  const allowlist_reload r = ctx.reload_curve_allowlists();
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.keys, 1u);
  EXPECT_TRUE(delivered(pull, ep, alice));
}

TEST_F(AuthenticatorTest, InprocPeersOfACurveServerAreNotDropped) {
  // inproc has no handshake: its messages carry no properties and come from this process.
  any_socket pull = server();
  pull.bind("inproc://curve-server-inproc");
  any_socket push(ctx, zmq::socket_type::push, socket_options{.linger = 0ms});
  push.connect("inproc://curve-server-inproc");
  ASSERT_TRUE(push.send(make_message("local")));
  message m;
  ASSERT_TRUE(pull.recv(m, wait_bound));
  EXPECT_EQ(m.view(0), "local");
  EXPECT_EQ(pull.dropped(), 0u);
}

TEST_F(AuthenticatorTest, AllowlistIsScopedToItsZapDomain) {
  const curve_keypair alice = enrol(allow, "alice");
  any_socket pull = server("domain-a");
  const std::string ep = pull.bind("tcp://127.0.0.1:*");
  socket_options o;
  o.linger = 0ms;
  o.security = curve_server{server_keys, "domain-b"};
  any_socket other(ctx, zmq::socket_type::pull, o);
  const std::string other_ep = other.bind("tcp://127.0.0.1:*");
  EXPECT_TRUE(delivered(pull, ep, alice));
  EXPECT_TRUE(refused(other, other_ep, alice));
  // A key allowed on the context itself counts in every domain.
  ctx.allow_curve_client(alice.public_key);
  EXPECT_TRUE(delivered(other, other_ep, alice));
}

TEST_F(AuthenticatorTest, ServerWithAnUnreadableAllowlistIsNotMade) {
  allow = dir.path() / "absent";
  testing::expect_error(errc::io_error, [&] { (void)server(); });
  EXPECT_EQ(ctx.allow_curve_clients_from(dir.sub("empty")), 0u);
}

TEST_F(AuthenticatorTest, NullAndPlainPeersAreCountedAndLoggedAtMostOncePerSecond) {
  captured_log log;
  ctx.set_log(log.fn(), log_level::warning);
  any_socket pull = server();
  const std::string ep = pull.bind("tcp://127.0.0.1:*");
  std::vector<any_socket> nulls;
  for (int i = 0; i < 5; ++i) {
    nulls.emplace_back(ctx, zmq::socket_type::push, socket_options{.linger = 0ms});
    nulls.back().connect(ep);
    (void)nulls.back().send(make_message("in the clear"));
  }
  zmq::socket_t plain(ctx.native(), zmq::socket_type::push);
  plain.set(zmq::sockopt::linger, 0);
  plain.set(zmq::sockopt::plain_username, "user");
  plain.set(zmq::sockopt::plain_password, "password");
  plain.connect(ep);
  (void)plain.send(zmq::str_buffer("plain text"), zmq::send_flags::dontwait);
  ASSERT_TRUE(eventually([&] { return ctx.auth_stats().refused_handshakes >= 6; }))
      << ctx.auth_stats().refused_handshakes;
  message m;
  EXPECT_TRUE(pull.recv(m, quiet_period).is(errc::timeout));
  const std::size_t lines = log.count_with("does not speak CURVE");
  EXPECT_GE(lines, 1u);
  EXPECT_LT(lines, ctx.auth_stats().refused_handshakes) << "the log is not rate-limited";
  EXPECT_EQ(ctx.auth_stats().allowed, 0u);
}

TEST_F(AuthenticatorTest, UnknownKeysAreLoggedWithTheKey) {
  captured_log log;
  ctx.set_log(log.fn(), log_level::warning);
  any_socket pull = server();
  const std::string ep = pull.bind("tcp://127.0.0.1:*");
  const curve_keypair stranger = curve_keypair::generate();
  EXPECT_TRUE(refused(pull, ep, stranger));
  EXPECT_TRUE(eventually([&] { return log.count_with(stranger.public_key) == 1; }));
}

TEST_F(AuthenticatorTest, CurveServerDropsMessagesWithoutAUserId) {
  struct reset_fault {
    ~reset_fault() { detail::zap_faults::set_empty_user_id(false); }
  } reset;
  const curve_keypair alice = enrol(allow, "alice");
  any_socket pull = server();
  const std::string ep = pull.bind("tcp://127.0.0.1:*");
  detail::zap_faults::set_empty_user_id(true);
  any_socket push = client(alice);
  push.connect(ep);
  ASSERT_TRUE(push.send(make_message("no user id")));
  ASSERT_TRUE(eventually([&] { return ctx.auth_stats().allowed >= 1; }));
  message m;
  // Polled until the message has arrived and been dropped: it is never handed over.
  ASSERT_TRUE(eventually([&] {
    EXPECT_FALSE(pull.try_recv(m)) << "a message without a User-Id was delivered";
    return pull.dropped() == 1;
  }));
  detail::zap_faults::set_empty_user_id(false);
  EXPECT_TRUE(delivered(pull, ep, alice));  // a new connection gets its User-Id again
}

}  // namespace
}  // namespace fabric
