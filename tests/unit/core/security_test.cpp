// Tests CURVE keys and the context's ZAP handler: who gets through a CURVE server and who is refused.
#include <fabric/context.hpp>
#include <fabric/error.hpp>
#include <fabric/monitor.hpp>
#include <fabric/security.hpp>
#include <fabric/socket.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace fabric {
namespace {

using namespace std::chrono_literals;
using fabric::testing::eventually;
using fabric::testing::wait_bound;

// How long a test watches for something that must not happen (a delivery to a refused client).
constexpr std::chrono::milliseconds quiet_period{100};

template <class Fn>
error expect_error(Fn&& fn) {
  try {
    fn();
  } catch (const error& e) {
    return e;
  }
  ADD_FAILURE() << "no fabric::error thrown";
  return error(errc::invalid_state, "nothing thrown");
}

socket_options server_options(const curve_keypair& keys) {
  socket_options o;
  o.linger = 0ms;
  o.security = curve_server{keys, "fabric"};
  return o;
}

socket_options client_options(const curve_keypair& keys, const std::string& server_public) {
  socket_options o;
  o.linger = 0ms;  // a refused client keeps its message queued; do not wait for it on close
  o.security = curve_client{keys, server_public};
  return o;
}

// A CURVE server (PULL, bound on tcp loopback) with a monitor that saw everything since bind.
struct curve_server_fixture {
  explicit curve_server_fixture(context& ctx)
      : keys(curve_keypair::generate()),
        pull(ctx, zmq::socket_type::pull, server_options(keys)),
        events(pull),
        endpoint(pull.bind("tcp://127.0.0.1:*")) {}
  curve_keypair keys;
  any_socket pull;
  monitor events;
  std::string endpoint;
};

// Connects a CURVE client with `keys` and waits until its handshake succeeds.
void connect_client(any_socket& push, const std::string& endpoint) {
  testing::connect_and_wait(push, endpoint);
}

// Expects the server to refuse a handshake: its ZAP handler counts a denial, the server socket
// reports handshake_failed_auth with status 400, and nothing is delivered.
void expect_refused(context& ctx, curve_server_fixture& server, std::uint64_t denied_before) {
  EXPECT_TRUE(eventually([&] { return ctx.auth_stats().denied > denied_before; }))
      << "the ZAP handler never denied the client";
  bool saw_auth_failure = false;
  const auto deadline = std::chrono::steady_clock::now() + wait_bound;
  while (!saw_auth_failure && std::chrono::steady_clock::now() < deadline) {
    auto e = server.events.next(wait_bound);
    if (!e) break;
    if (e->event == socket_event::handshake_failed_auth) {
      saw_auth_failure = true;
      EXPECT_EQ(e->value, 400U);
    }
    EXPECT_NE(e->event, socket_event::handshake_succeeded);
  }
  EXPECT_TRUE(saw_auth_failure);
  message m;
  EXPECT_TRUE(server.pull.recv(m, quiet_period).is(errc::timeout));
}

// ---- keys ----

TEST(CurveKeysTest, GenerateMakesFortyCharacterZ85Keys) {
  const curve_keypair keys = curve_keypair::generate();
  EXPECT_EQ(keys.public_key.size(), 40U);
  EXPECT_EQ(keys.secret_key.size(), 40U);
  EXPECT_TRUE(is_z85_key(keys.public_key));
  EXPECT_TRUE(is_z85_key(keys.secret_key));
  EXPECT_NE(keys.public_key, keys.secret_key);
}

TEST(CurveKeysTest, GenerateMakesFreshKeysEachTime) {
  std::set<std::string> seen;
  for (int i = 0; i < 20; ++i) {
    const curve_keypair keys = curve_keypair::generate();
    EXPECT_TRUE(seen.insert(keys.public_key).second);
    EXPECT_TRUE(seen.insert(keys.secret_key).second);
  }
}

TEST(CurveKeysTest, FromSecretDerivesTheSamePublicKey) {
  for (int i = 0; i < 5; ++i) {
    const curve_keypair keys = curve_keypair::generate();
    const curve_keypair derived = curve_keypair::from_secret(keys.secret_key);
    EXPECT_EQ(derived.public_key, keys.public_key);
    EXPECT_EQ(derived.secret_key, keys.secret_key);
  }
}

TEST(CurveKeysTest, FromSecretRejectsMalformedKeys) {
  for (const std::string& bad : {std::string(), std::string(39, 'a'), std::string(41, 'a'),
                                 std::string(39, 'a') + " ", std::string(40, '~')}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(expect_error([&] { (void)curve_keypair::from_secret(bad); }).code(), errc::invalid_argument);
  }
}

TEST(CurveKeysTest, IsZ85KeyAcceptsTheWholeAlphabet) {
  const std::string alphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  ASSERT_EQ(alphabet.size(), 85U);
  for (std::size_t start = 0; start + 40 <= alphabet.size(); start += 5)
    EXPECT_TRUE(is_z85_key(alphabet.substr(start, 40))) << alphabet.substr(start, 40);
  EXPECT_TRUE(is_z85_key(alphabet.substr(alphabet.size() - 40)));
}

TEST(CurveKeysTest, IsZ85KeyRejectsBadKeys) {
  const std::string good = curve_keypair::generate().public_key;
  std::vector<std::string> bad = {"", good.substr(0, 39), good + "A", good + good, std::string(40, '\0')};
  // Every printable ASCII character outside the Z85 alphabet, in an otherwise good key.
  for (char c : std::string(" \"',;\\_`|~")) {
    std::string key = good;
    key[17] = c;
    bad.push_back(key);
  }
  std::string high = good;
  high[0] = static_cast<char>(0xe9);
  bad.push_back(high);
  for (const auto& key : bad) EXPECT_FALSE(is_z85_key(key)) << key;
}

TEST(CurveKeysTest, AllowCurveClientRejectsAMalformedKey) {
  context ctx;
  EXPECT_EQ(expect_error([&] { ctx.allow_curve_client("not a key"); }).code(), errc::invalid_argument);
  EXPECT_EQ(expect_error([&] { ctx.allow_curve_client(std::string(41, 'a')); }).code(), errc::invalid_argument);
  ctx.revoke_curve_client("not a key");  // revoking what was never allowed is harmless
}

TEST(CurveKeysTest, SocketWithAMalformedKeyThrowsInvalidArgument) {
  context ctx;
  const curve_keypair good = curve_keypair::generate();
  curve_keypair bad_secret = good;
  bad_secret.secret_key = "short";
  curve_keypair bad_public = good;
  bad_public.public_key = std::string(40, ' ');

  std::vector<std::pair<const char*, socket_options>> cases = {
      {"server with a bad secret", server_options(bad_secret)},
      {"client with a bad server key", client_options(good, "not-a-key")},
      {"client with a bad public key", client_options(bad_public, good.public_key)},
      {"client with a bad secret key", client_options(bad_secret, good.public_key)},
  };
  for (const auto& [name, options] : cases) {
    SCOPED_TRACE(name);
    const error e = expect_error([&] { any_socket s(ctx, zmq::socket_type::pull, options); });
    EXPECT_EQ(e.code(), errc::invalid_argument) << e.what();
  }
}

// ---- the ZAP handler ----

TEST(CurveAuthTest, FreshContextHasZeroCounters) {
  context ctx;
  const authenticator_stats stats = ctx.auth_stats();
  EXPECT_EQ(stats.allowed, 0U);
  EXPECT_EQ(stats.denied, 0U);
}

TEST(CurveAuthTest, AllowedClientGetsThrough) {
  context ctx;
  curve_server_fixture server(ctx);
  const curve_keypair client_keys = curve_keypair::generate();
  ctx.allow_curve_client(client_keys.public_key);
  any_socket push(ctx, zmq::socket_type::push, client_options(client_keys, server.keys.public_key));
  connect_client(push, server.endpoint);

  ASSERT_TRUE(push.send(make_message("secret", "payload")));
  message m;
  ASSERT_TRUE(server.pull.recv(m, wait_bound));
  ASSERT_EQ(m.size(), 2U);
  EXPECT_EQ(m.view(0), "secret");
  EXPECT_EQ(m.view(1), "payload");
  EXPECT_TRUE(eventually([&] { return ctx.auth_stats().allowed >= 1; }));
  EXPECT_EQ(ctx.auth_stats().denied, 0U);
  EXPECT_TRUE(server.events.wait_for(socket_event::handshake_succeeded, wait_bound));
}

TEST(CurveAuthTest, UnknownClientIsDenied) {
  context ctx;
  curve_server_fixture server(ctx);
  ctx.allow_curve_client(curve_keypair::generate().public_key);  // someone else
  const curve_keypair stranger = curve_keypair::generate();
  any_socket push(ctx, zmq::socket_type::push, client_options(stranger, server.keys.public_key));
  push.connect(server.endpoint);
  ASSERT_TRUE(push.send(make_message("let me in")));  // queued: the pusher does not know yet
  expect_refused(ctx, server, 0);
  EXPECT_EQ(ctx.auth_stats().allowed, 0U);
}

TEST(CurveAuthTest, NoClientIsAllowedByDefault) {
  context ctx;
  curve_server_fixture server(ctx);
  const curve_keypair client_keys = curve_keypair::generate();
  any_socket push(ctx, zmq::socket_type::push, client_options(client_keys, server.keys.public_key));
  push.connect(server.endpoint);
  ASSERT_TRUE(push.send(make_message("hello?")));
  expect_refused(ctx, server, 0);
}

TEST(CurveAuthTest, AllowAnyCurveClientLetsUnknownKeysIn) {
  context ctx;
  curve_server_fixture server(ctx);
  ctx.allow_any_curve_client(true);
  const curve_keypair stranger = curve_keypair::generate();
  any_socket push(ctx, zmq::socket_type::push, client_options(stranger, server.keys.public_key));
  connect_client(push, server.endpoint);
  ASSERT_TRUE(push.send(make_message("anyone")));
  message m;
  ASSERT_TRUE(server.pull.recv(m, wait_bound));
  EXPECT_EQ(m.view(0), "anyone");
  EXPECT_TRUE(eventually([&] { return ctx.auth_stats().allowed >= 1; }));
  EXPECT_TRUE(server.events.wait_for(socket_event::handshake_succeeded, wait_bound));

  // Switching it off again refuses the next unknown client.
  ctx.allow_any_curve_client(false);
  const std::uint64_t denied_before = ctx.auth_stats().denied;
  any_socket late(ctx, zmq::socket_type::push, client_options(curve_keypair::generate(), server.keys.public_key));
  late.connect(server.endpoint);
  ASSERT_TRUE(late.send(make_message("too late")));
  expect_refused(ctx, server, denied_before);
}

TEST(CurveAuthTest, RevokedKeyIsDeniedButItsExistingConnectionStaysUp) {
  context ctx;
  curve_server_fixture server(ctx);
  const curve_keypair client_keys = curve_keypair::generate();
  ctx.allow_curve_client(client_keys.public_key);
  any_socket first(ctx, zmq::socket_type::push, client_options(client_keys, server.keys.public_key));
  connect_client(first, server.endpoint);
  ASSERT_TRUE(first.send(make_message("before")));
  message m;
  ASSERT_TRUE(server.pull.recv(m, wait_bound));
  EXPECT_TRUE(server.events.wait_for(socket_event::handshake_succeeded, wait_bound));

  ctx.revoke_curve_client(client_keys.public_key);
  any_socket second(ctx, zmq::socket_type::push, client_options(client_keys, server.keys.public_key));
  second.connect(server.endpoint);
  ASSERT_TRUE(second.send(make_message("after revoke")));
  expect_refused(ctx, server, 0);

  ASSERT_TRUE(first.send(make_message("still here")));
  ASSERT_TRUE(server.pull.recv(m, wait_bound));
  EXPECT_EQ(m.view(0), "still here");
}

TEST(CurveAuthTest, PlainClientToACurveServerIsNotDelivered) {
  context ctx;
  curve_server_fixture server(ctx);
  ctx.allow_any_curve_client(true);  // even so: a client without CURVE cannot talk to it
  socket_options plain;
  plain.linger = 0ms;
  any_socket push(ctx, zmq::socket_type::push, plain);
  monitor client_events(push);
  push.connect(server.endpoint);
  ASSERT_TRUE(push.send(make_message("in the clear")));
  // The mechanisms do not match: the handshake fails on protocol grounds, before any ZAP request.
  EXPECT_TRUE(client_events.wait_for(socket_event::handshake_failed_protocol, wait_bound));
  message m;
  EXPECT_TRUE(server.pull.recv(m, quiet_period).is(errc::timeout));
  EXPECT_EQ(ctx.auth_stats().allowed, 0U);
}

TEST(CurveAuthTest, ClientWithTheWrongServerKeyIsNotDelivered) {
  context ctx;
  curve_server_fixture server(ctx);
  ctx.allow_any_curve_client(true);
  const curve_keypair impostor = curve_keypair::generate();  // not the server's key
  any_socket push(ctx, zmq::socket_type::push, client_options(curve_keypair::generate(), impostor.public_key));
  push.connect(server.endpoint);
  ASSERT_TRUE(push.send(make_message("to whom?")));
  // The server cannot decrypt the client's hello: the connection fails during the handshake.
  EXPECT_TRUE(server.events.wait_for(socket_event::handshake_failed_protocol, wait_bound));
  message m;
  EXPECT_TRUE(server.pull.recv(m, quiet_period).is(errc::timeout));
  EXPECT_EQ(ctx.auth_stats().allowed, 0U);
}

TEST(CurveAuthTest, SeveralCurveServersShareOneAuthenticator) {
  context ctx;
  curve_server_fixture a(ctx);
  curve_server_fixture b(ctx);
  ctx.ensure_authenticator();  // already running: a no-op
  const curve_keypair client_keys = curve_keypair::generate();
  ctx.allow_curve_client(client_keys.public_key);
  any_socket to_a(ctx, zmq::socket_type::push, client_options(client_keys, a.keys.public_key));
  any_socket to_b(ctx, zmq::socket_type::push, client_options(client_keys, b.keys.public_key));
  connect_client(to_a, a.endpoint);
  connect_client(to_b, b.endpoint);
  ASSERT_TRUE(to_a.send(make_message("a")));
  ASSERT_TRUE(to_b.send(make_message("b")));
  message m;
  ASSERT_TRUE(a.pull.recv(m, wait_bound));
  EXPECT_EQ(m.view(0), "a");
  ASSERT_TRUE(b.pull.recv(m, wait_bound));
  EXPECT_EQ(m.view(0), "b");
  EXPECT_TRUE(eventually([&] { return ctx.auth_stats().allowed >= 2; }));
}

}  // namespace
}  // namespace fabric
