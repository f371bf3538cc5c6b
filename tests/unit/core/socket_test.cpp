// Tests fabric::socket: options, bind/connect errors, send/recv outcomes, bounds, closing, moves and monitors.
#include <fabric/context.hpp>
#include <fabric/error.hpp>
#include <fabric/monitor.hpp>
#include <fabric/socket.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>
#include <zmq.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace fabric {
namespace {

using namespace std::chrono_literals;
using fabric::testing::transport;
using fabric::testing::wait_bound;

socket_options quiet() {
  socket_options o;
  o.linger = 0ms;
  return o;
}

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

int int_option(const socket& s, int option) {
  int value = 0;
  std::size_t size = sizeof value;
  EXPECT_EQ(zmq_getsockopt(s.native(), option, &value, &size), 0);
  return value;
}

std::string port_of(const std::string& endpoint) { return endpoint.substr(endpoint.rfind(':') + 1); }

// ---- options ----

TEST(SocketOptionsTest, DefaultsAreBounded) {
  const socket_options o;
  EXPECT_EQ(o.linger, 1000ms);
  EXPECT_EQ(o.max_message_size, default_max_message_size);
  EXPECT_EQ(default_max_message_size, std::int64_t{64} << 20);
  EXPECT_EQ(o.max_frames, 256U);
  EXPECT_EQ(o.send_hwm, 1000);
  EXPECT_EQ(o.recv_hwm, 1000);
  EXPECT_TRUE(o.router_mandatory);
  EXPECT_FALSE(o.send_timeout.has_value());
  EXPECT_FALSE(o.recv_timeout.has_value());
}

TEST(SocketOptionsTest, OptionsAreAppliedToTheLibzmqSocket) {
  context ctx;
  socket_options o;
  o.send_hwm = 11;
  o.recv_hwm = 22;
  o.linger = 33ms;
  o.max_message_size = 4096;
  o.routing_id = "me";
  o.immediate = true;
  o.reconnect_interval = 44ms;
  any_socket s(ctx, zmq::socket_type::dealer, o);
  EXPECT_EQ(int_option(s, ZMQ_SNDHWM), 11);
  EXPECT_EQ(int_option(s, ZMQ_RCVHWM), 22);
  EXPECT_EQ(int_option(s, ZMQ_LINGER), 33);
  EXPECT_EQ(int_option(s, ZMQ_IMMEDIATE), 1);
  EXPECT_EQ(int_option(s, ZMQ_RECONNECT_IVL), 44);
  std::int64_t max_size = 0;
  std::size_t size = sizeof max_size;
  ASSERT_EQ(zmq_getsockopt(s.native(), ZMQ_MAXMSGSIZE, &max_size, &size), 0);
  EXPECT_EQ(max_size, 4096);
  char id[256];
  size = sizeof id;
  ASSERT_EQ(zmq_getsockopt(s.native(), ZMQ_ROUTING_ID, id, &size), 0);
  EXPECT_EQ(std::string(id, size), "me");
  EXPECT_EQ(s.options().send_hwm, 11);
  EXPECT_EQ(s.type(), zmq::socket_type::dealer);
  EXPECT_EQ(&s.owner(), &ctx);
}

TEST(SocketOptionsTest, NegativeMaxMessageSizeMeansUnlimited) {
  context ctx;
  socket_options o = quiet();
  o.max_message_size = -5;
  any_socket s(ctx, zmq::socket_type::pull, o);
  std::int64_t max_size = 0;
  std::size_t size = sizeof max_size;
  ASSERT_EQ(zmq_getsockopt(s.native(), ZMQ_MAXMSGSIZE, &max_size, &size), 0);
  EXPECT_EQ(max_size, -1);
}

struct bad_option {
  const char* name;
  socket_options options;
};

std::vector<bad_option> bad_options() {
  std::vector<bad_option> cases;
  auto add = [&](const char* name, auto change) {
    socket_options o;
    change(o);
    cases.push_back({name, o});
  };
  add("NegativeSendHwm", [](socket_options& o) { o.send_hwm = -1; });
  add("NegativeRecvHwm", [](socket_options& o) { o.recv_hwm = -1; });
  add("ZeroMaxFrames", [](socket_options& o) { o.max_frames = 0; });
  add("NegativeLinger", [](socket_options& o) { o.linger = -1ms; });
  add("LingerBeyondInt32", [](socket_options& o) { o.linger = std::chrono::milliseconds(std::int64_t{1} << 32); });
  add("NegativeSendTimeout", [](socket_options& o) { o.send_timeout = -1ms; });
  add("NegativeRecvTimeout", [](socket_options& o) { o.recv_timeout = -1ms; });
  add("NegativeReconnectInterval", [](socket_options& o) { o.reconnect_interval = -1ms; });
  add("NegativeReconnectIntervalMax", [](socket_options& o) { o.reconnect_interval_max = -1ms; });
  add("NegativeHeartbeatInterval", [](socket_options& o) { o.heartbeat_interval = -1ms; });
  add("NegativeHeartbeatTimeout", [](socket_options& o) {
    o.heartbeat_interval = 100ms;
    o.heartbeat_timeout = -1ms;
  });
  add("NegativeHeartbeatTtlWithHeartbeatsOff", [](socket_options& o) { o.heartbeat_ttl = -1ms; });
  add("RoutingIdLongerThan255", [](socket_options& o) { o.routing_id.assign(256, 'r'); });
  add("RoutingIdStartingWithZero", [](socket_options& o) { o.routing_id = std::string("\0id", 3); });
  return cases;
}

TEST(SocketOptionsTest, InvalidOptionsAreRejectedWithInvalidArgument) {
  context ctx;
  for (const auto& c : bad_options()) {
    SCOPED_TRACE(c.name);
    const error e = expect_error([&] { any_socket s(ctx, zmq::socket_type::dealer, c.options); });
    EXPECT_EQ(e.code(), errc::invalid_argument) << e.what();
  }
  // A rejected socket is closed, so the context still terminates (the test would hang if not).
}

// ---- bind and connect ----

TEST(SocketTest, BindReturnsTheResolvedTcpEndpoint) {
  context ctx;
  any_socket s(ctx, zmq::socket_type::pull, quiet());
  const std::string endpoint = s.bind("tcp://127.0.0.1:*");
  EXPECT_EQ(endpoint.rfind("tcp://127.0.0.1:", 0), 0U) << endpoint;
  const std::string port = port_of(endpoint);
  ASSERT_FALSE(port.empty());
  EXPECT_NE(port, "*");
  EXPECT_GT(std::stoi(port), 0);
  EXPECT_LT(std::stoi(port), 65536);
  EXPECT_EQ(s.last_endpoint(), endpoint);
}

TEST(SocketTest, BindReturnsInprocEndpointsUnchanged) {
  context ctx;
  any_socket s(ctx, zmq::socket_type::pull, quiet());
  const std::string wanted = testing::loopback_endpoint(transport::inproc, "bind");
  EXPECT_EQ(s.bind(wanted), wanted);
}

TEST(SocketTest, BindOnATakenPortThrowsNamingTheEndpoint) {
  context ctx;
  any_socket first(ctx, zmq::socket_type::pull, quiet());
  any_socket second(ctx, zmq::socket_type::pull, quiet());
  const std::string endpoint = first.bind("tcp://127.0.0.1:*");
  const error e = expect_error([&] { (void)second.bind(endpoint); });
  EXPECT_NE(std::string(e.what()).find(endpoint), std::string::npos) << e.what();
  EXPECT_EQ(e.code(), std::errc::address_in_use);
  EXPECT_EQ(&e.code().category(), &zmq_category());
}

TEST(SocketTest, BindOnATakenInprocNameThrows) {
  context ctx;
  any_socket first(ctx, zmq::socket_type::pull, quiet());
  any_socket second(ctx, zmq::socket_type::pull, quiet());
  const std::string endpoint = first.bind(testing::loopback_endpoint(transport::inproc, "taken"));
  const error e = expect_error([&] { (void)second.bind(endpoint); });
  EXPECT_NE(std::string(e.what()).find(endpoint), std::string::npos) << e.what();
}

TEST(SocketTest, UnknownTransportThrowsNamingTheEndpoint) {
  context ctx;
  any_socket s(ctx, zmq::socket_type::pull, quiet());
  const error on_bind = expect_error([&] { (void)s.bind("foo://x"); });
  EXPECT_NE(std::string(on_bind.what()).find("foo://x"), std::string::npos) << on_bind.what();
  EXPECT_EQ(on_bind.code(), std::error_code(EPROTONOSUPPORT, zmq_category()));
  const error on_connect = expect_error([&] { s.connect("foo://x"); });
  EXPECT_NE(std::string(on_connect.what()).find("foo://x"), std::string::npos) << on_connect.what();
}

TEST(SocketTest, MalformedEndpointsThrow) {
  context ctx;
  any_socket s(ctx, zmq::socket_type::pull, quiet());
  for (const char* endpoint : {"tcp://127.0.0.1", "tcp://", "no-scheme", ""}) {
    SCOPED_TRACE(endpoint);
    const error e = expect_error([&] { (void)s.bind(endpoint); });
    EXPECT_NE(std::string(e.what()).find(std::string("'") + endpoint + "'"), std::string::npos) << e.what();
  }
  const error e = expect_error([&] { s.connect("tcp://127.0.0.1"); });
  EXPECT_NE(std::string(e.what()).find("tcp://127.0.0.1"), std::string::npos) << e.what();
}

TEST(SocketTest, UnbindAndDisconnectOfUnknownEndpointsThrow) {
  context ctx;
  any_socket s(ctx, zmq::socket_type::pull, quiet());
  (void)expect_error([&] { s.unbind("tcp://127.0.0.1:1"); });
  (void)expect_error([&] { s.disconnect("tcp://127.0.0.1:1"); });
}

TEST(SocketTest, UnbindFreesThePort) {
  context ctx;
  any_socket first(ctx, zmq::socket_type::pull, quiet());
  any_socket second(ctx, zmq::socket_type::pull, quiet());
  monitor events(first);
  const std::string endpoint = first.bind("tcp://127.0.0.1:*");
  first.unbind(endpoint);
  // libzmq closes the listener in its I/O thread; the monitor says when the port is free.
  ASSERT_TRUE(events.wait_for(socket_event::closed, wait_bound));
  EXPECT_EQ(second.bind(endpoint), endpoint);
}

// ---- sending and receiving ----

struct pipeline {
  pipeline(context& ctx, transport t, socket_options pull_options = quiet(), socket_options push_options = quiet())
      : pull(ctx, zmq::socket_type::pull, pull_options), push(ctx, zmq::socket_type::push, push_options) {
    endpoint = testing::marry(pull, push, t);
  }
  any_socket pull;
  any_socket push;
  std::string endpoint;
};

TEST(SocketTest, SendsAndReceivesMultipartMessages) {
  context ctx;
  pipeline p(ctx, transport::inproc);
  message out = make_message("a", "", std::string(1000, 'z'));
  ASSERT_TRUE(p.push.send(std::move(out)));
  EXPECT_TRUE(out.empty());  // NOLINT(bugprone-use-after-move): a successful send empties it
  message in = make_message("stale", "frames");
  ASSERT_TRUE(p.pull.recv(in, wait_bound));
  ASSERT_EQ(in.size(), 3U);  // recv replaces what was there
  EXPECT_EQ(in.view(0), "a");
  EXPECT_EQ(in.view(1), "");
  EXPECT_EQ(in.view(2), std::string(1000, 'z'));
}

TEST(SocketTest, SendsSingleFramesAndStrings) {
  context ctx;
  pipeline p(ctx, transport::inproc);
  frame f = make_frame("frame");
  ASSERT_TRUE(p.push.send(std::move(f)));
  ASSERT_TRUE(p.push.send(std::string_view("text")));
  ASSERT_TRUE(p.push.try_send(make_frame("try")));
  ASSERT_TRUE(p.push.send(make_frame("timed"), wait_bound));
  for (const char* expected : {"frame", "text", "try", "timed"}) {
    auto m = p.pull.recv(wait_bound);
    ASSERT_TRUE(m);
    ASSERT_EQ(m->size(), 1U);
    EXPECT_EQ(m->view(0), expected);
  }
}

TEST(SocketTest, WorksOverEveryTransport) {
  for (transport t : {transport::inproc, transport::ipc, transport::tcp}) {
    SCOPED_TRACE(testing::to_string(t));
    context ctx;
    pipeline p(ctx, t);
    ASSERT_TRUE(p.push.send(make_message("over", testing::to_string(t))));
    auto m = p.pull.recv(wait_bound);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->view(1), testing::to_string(t));
  }
}

TEST(SocketTest, SendingAMessageWithNoFramesThrows) {
  context ctx;
  pipeline p(ctx, transport::inproc);
  const error e = expect_error([&] { (void)p.push.send(message()); });
  EXPECT_EQ(e.code(), errc::invalid_argument);
}

TEST(SocketTest, RecvTimesOut) {
  context ctx;
  any_socket pull(ctx, zmq::socket_type::pull, quiet());
  (void)pull.bind(testing::loopback_endpoint(transport::inproc, "timeout"));
  message m = make_message("left over");
  auto r = pull.recv(m, 20ms);
  EXPECT_TRUE(r.is(errc::timeout)) << r.error().message();
  EXPECT_TRUE(m.empty());
  EXPECT_TRUE(pull.recv(20ms).is(errc::timeout));
}

TEST(SocketTest, RecvUsesTheConfiguredTimeout) {
  context ctx;
  socket_options o = quiet();
  o.recv_timeout = 20ms;
  any_socket pull(ctx, zmq::socket_type::pull, o);
  (void)pull.bind(testing::loopback_endpoint(transport::inproc, "timeout"));
  message m;
  EXPECT_TRUE(pull.recv(m).is(errc::timeout));
  EXPECT_TRUE(pull.recv().is(errc::timeout));
}

TEST(SocketTest, ZeroTimeoutPollsWithoutWaiting) {
  context ctx;
  any_socket pull(ctx, zmq::socket_type::pull, quiet());
  message m;
  // A timeout of zero (or less) is a poll: it reports would_block, like try_recv.
  EXPECT_TRUE(pull.recv(m, 0ms).is(errc::would_block));
  EXPECT_TRUE(pull.recv(m, -5ms).is(errc::would_block));
}

TEST(SocketTest, TryRecvWouldBlock) {
  context ctx;
  any_socket pull(ctx, zmq::socket_type::pull, quiet());
  (void)pull.bind(testing::loopback_endpoint(transport::inproc, "empty"));
  message m;
  auto r = pull.try_recv(m);
  EXPECT_TRUE(r.is(errc::would_block)) << r.error().message();
}

TEST(SocketTest, PushWithNoPeerReportsBackPressureAndKeepsTheMessage) {
  context ctx;
  any_socket push(ctx, zmq::socket_type::push, quiet());
  message m = make_message("keep", "me");
  auto r = push.try_send(std::move(m));
  EXPECT_TRUE(r.is(errc::back_pressure)) << r.error().message();
  ASSERT_EQ(m.size(), 2U);  // NOLINT(bugprone-use-after-move): unchanged on failure
  EXPECT_EQ(m.view(0), "keep");
  r = push.send(std::move(m), 10ms);
  EXPECT_TRUE(r.is(errc::back_pressure)) << r.error().message();
  EXPECT_EQ(m.size(), 2U);  // NOLINT(bugprone-use-after-move)
  frame f = make_frame("single");
  EXPECT_TRUE(push.try_send(std::move(f)).is(errc::back_pressure));
  EXPECT_EQ(view(f), "single");  // NOLINT(bugprone-use-after-move)
}

TEST(SocketTest, SendUsesTheConfiguredTimeout) {
  context ctx;
  socket_options o = quiet();
  o.send_timeout = 10ms;
  any_socket push(ctx, zmq::socket_type::push, o);
  message m = make_message("x");
  EXPECT_TRUE(push.send(std::move(m)).is(errc::back_pressure));
}

TEST(SocketTest, HighWaterMarkOfOneReportsBackPressure) {
  context ctx;
  socket_options push_options = quiet();
  push_options.send_hwm = 1;
  socket_options pull_options = quiet();
  pull_options.recv_hwm = 1;
  pipeline p(ctx, transport::inproc, pull_options, push_options);
  int sent = 0;
  result<void> r;
  while (sent < 100) {
    r = p.push.try_send(make_message(std::to_string(sent)));
    if (!r) break;
    ++sent;
  }
  EXPECT_TRUE(r.is(errc::back_pressure)) << r.error().message();
  EXPECT_GE(sent, 1);
  EXPECT_LE(sent, 4);  // inproc queues at most send_hwm + recv_hwm (plus libzmq's slack)
  // What was queued arrives, in order.
  for (int i = 0; i < sent; ++i) {
    auto m = p.pull.recv(wait_bound);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->view(0), std::to_string(i));
  }
}

TEST(SocketTest, MessageWithTooManyFramesIsDroppedAndCounted) {
  context ctx;
  socket_options pull_options = quiet();
  pull_options.max_frames = 3;
  pipeline p(ctx, transport::inproc, pull_options);
  ASSERT_TRUE(p.push.send(make_message("1", "2", "3", "4")));
  ASSERT_TRUE(p.push.send(make_message("a", "b", "c")));
  ASSERT_TRUE(p.push.send(make_message("1", "2", "3", "4", "5", "6", "7", "8")));
  ASSERT_TRUE(p.push.send(make_message("last")));
  EXPECT_EQ(p.pull.dropped(), 0U);

  message m;
  auto r = p.pull.recv(m, wait_bound);
  EXPECT_TRUE(r.is(errc::too_large)) << r.error().message();
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(p.pull.dropped(), 1U);

  ASSERT_TRUE(p.pull.recv(m, wait_bound));  // exactly max_frames is fine
  ASSERT_EQ(m.size(), 3U);
  EXPECT_EQ(m.view(0), "a");
  EXPECT_EQ(m.view(2), "c");

  EXPECT_TRUE(p.pull.recv(m, wait_bound).is(errc::too_large));
  EXPECT_EQ(p.pull.dropped(), 2U);

  ASSERT_TRUE(p.pull.recv(m, wait_bound));  // the drain left no frames of the dropped ones behind
  ASSERT_EQ(m.size(), 1U);
  EXPECT_EQ(m.view(0), "last");
}

TEST(SocketTest, FrameOverMaxMessageSizeIsNotDelivered) {
  context ctx;
  socket_options pull_options = quiet();
  pull_options.max_message_size = 1024;
  any_socket pull(ctx, zmq::socket_type::pull, pull_options);
  any_socket push(ctx, zmq::socket_type::push, quiet());
  monitor events(pull);  // before bind/connect, so no event is missed
  monitor push_events(push);
  const std::string endpoint = pull.bind("tcp://127.0.0.1:*");
  push.connect(endpoint);
  ASSERT_TRUE(push_events.wait_for(socket_event::handshake_succeeded, wait_bound));
  ASSERT_TRUE(events.wait_for(socket_event::handshake_succeeded, wait_bound));

  ASSERT_TRUE(push.send(make_message(std::string(2048, 'L'))));
  // libzmq drops the connection that carried the oversized frame.
  ASSERT_TRUE(events.wait_for(socket_event::disconnected, wait_bound));
  message m;
  EXPECT_TRUE(pull.try_recv(m).is(errc::would_block));

  // The pusher sees the loss and reconnects (anything sent before it noticed would be lost with
  // the old connection, as always with ZeroMQ). Then a frame of exactly the limit goes through,
  // and it is the first thing delivered: the oversized one is gone for good.
  ASSERT_TRUE(push_events.wait_for(socket_event::disconnected, wait_bound));
  ASSERT_TRUE(push_events.wait_for(socket_event::handshake_succeeded, wait_bound));
  ASSERT_TRUE(push.send(make_message(std::string(1024, 's'))));
  ASSERT_TRUE(pull.recv(m, wait_bound));
  ASSERT_EQ(m.size(), 1U);
  EXPECT_EQ(m.view(0), std::string(1024, 's'));
}

TEST(SocketTest, ReqSendingTwiceThrows) {
  context ctx;
  any_socket rep(ctx, zmq::socket_type::rep, quiet());
  any_socket req(ctx, zmq::socket_type::req, quiet());
  (void)testing::marry(rep, req, transport::inproc);
  ASSERT_TRUE(req.send(make_message("first")));
  const error e = expect_error([&] { (void)req.send(make_message("second")); });
  EXPECT_EQ(e.code(), std::error_code(EFSM, zmq_category()));
  // The socket is still usable in the right order.
  message m;
  ASSERT_TRUE(rep.recv(m, wait_bound));
  ASSERT_TRUE(rep.send(make_message("reply")));
  ASSERT_TRUE(req.recv(m, wait_bound));
  EXPECT_EQ(m.view(0), "reply");
}

TEST(SocketTest, SendingOrReceivingOutOfTurnThrows) {
  context ctx;
  any_socket rep(ctx, zmq::socket_type::rep, quiet());
  const error e = expect_error([&] { (void)rep.send(make_message("unasked")); });
  EXPECT_EQ(e.code(), std::error_code(EFSM, zmq_category()));
  any_socket req(ctx, zmq::socket_type::req, quiet());
  message m;
  const error on_recv = expect_error([&] { (void)req.recv(m, 10ms); });
  EXPECT_EQ(on_recv.code(), std::error_code(EFSM, zmq_category()));
}

TEST(SocketTest, SendOnAReceiveOnlySocketThrows) {
  context ctx;
  any_socket pull(ctx, zmq::socket_type::pull, quiet());
  const error e = expect_error([&] { (void)pull.send(make_message("x")); });
  EXPECT_EQ(e.code(), std::error_code(ENOTSUP, zmq_category()));
}

// ---- closing and moving ----

TEST(SocketTest, OperationsOnAClosedSocketReportClosed) {
  context ctx;
  any_socket s(ctx, zmq::socket_type::pair, quiet());
  EXPECT_TRUE(s.valid());
  s.close();
  EXPECT_FALSE(s.valid());
  EXPECT_EQ(s.native(), nullptr);
  s.close();  // idempotent
  message m = make_message("x");
  EXPECT_TRUE(s.send(std::move(m)).is(errc::closed));
  EXPECT_EQ(m.size(), 1U);  // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(s.try_send(std::move(m)).is(errc::closed));
  EXPECT_TRUE(s.send(std::move(m), 10ms).is(errc::closed));
  EXPECT_TRUE(s.send(make_frame("f")).is(errc::closed));
  EXPECT_TRUE(s.try_send(make_frame("f")).is(errc::closed));
  EXPECT_TRUE(s.send(std::string_view("s")).is(errc::closed));
  EXPECT_TRUE(s.send(message()).is(errc::closed));
  EXPECT_TRUE(s.recv(m).is(errc::closed));
  EXPECT_TRUE(s.recv(m, 10ms).is(errc::closed));
  EXPECT_TRUE(s.try_recv(m).is(errc::closed));
  EXPECT_TRUE(s.recv().is(errc::closed));
  EXPECT_TRUE(s.recv(10ms).is(errc::closed));
  EXPECT_EQ(expect_error([&] { (void)s.bind("inproc://closed"); }).code(), errc::closed);
  EXPECT_EQ(expect_error([&] { s.connect("inproc://closed"); }).code(), errc::closed);
  EXPECT_EQ(expect_error([&] { s.unbind("inproc://closed"); }).code(), errc::closed);
  EXPECT_EQ(expect_error([&] { s.disconnect("inproc://closed"); }).code(), errc::closed);
  EXPECT_EQ(expect_error([&] { (void)s.last_endpoint(); }).code(), errc::closed);
  EXPECT_EQ(expect_error([&] { monitor watch(s); }).code(), errc::closed);
}

TEST(SocketTest, ContextShutdownMakesCallsReportClosed) {
  context ctx;
  pipeline p(ctx, transport::inproc);
  ctx.shutdown();
  message m;
  EXPECT_TRUE(p.pull.recv(m, wait_bound).is(errc::closed));
  EXPECT_TRUE(p.pull.try_recv(m).is(errc::closed));
  EXPECT_TRUE(p.push.send(make_message("x")).is(errc::closed));
}

TEST(SocketTest, ContextShutdownWakesABlockedRecv) {
  context ctx;
  any_socket pull(ctx, zmq::socket_type::pull, quiet());
  (void)pull.bind(testing::loopback_endpoint(transport::inproc, "blocked"));
  // Shutdown may land before or during the recv; either way the recv must come back closed
  // rather than wait forever (it has no timeout).
  std::thread stopper([&] { ctx.shutdown(); });
  message m;
  auto r = pull.recv(m);
  stopper.join();
  EXPECT_TRUE(r.is(errc::closed)) << r.error().message();
}

TEST(SocketTest, MovedFromSocketIsInvalid) {
  context ctx;
  any_socket original(ctx, zmq::socket_type::pull, quiet());
  void* native = original.native();
  const std::string endpoint = original.bind(testing::loopback_endpoint(transport::inproc, "move"));
  any_socket moved(std::move(original));
  EXPECT_FALSE(original.valid());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  EXPECT_EQ(original.native(), nullptr);  // NOLINT(bugprone-use-after-move)
  message m;
  EXPECT_TRUE(original.try_recv(m).is(errc::closed));  // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(moved.valid());
  EXPECT_EQ(moved.native(), native);
  EXPECT_EQ(moved.last_endpoint(), endpoint);

  // The moved-to socket still works at the same endpoint.
  any_socket push(ctx, zmq::socket_type::push, quiet());
  push.connect(endpoint);
  ASSERT_TRUE(push.send(make_message("after move")));
  ASSERT_TRUE(moved.recv(m, wait_bound));
  EXPECT_EQ(m.view(0), "after move");
}

TEST(SocketTest, MoveAssignmentClosesTheTargetsOldSocket) {
  context ctx;
  any_socket a(ctx, zmq::socket_type::pull, quiet());
  any_socket b(ctx, zmq::socket_type::pull, quiet());
  any_socket peer(ctx, zmq::socket_type::push, quiet());
  monitor peer_events(peer);
  const std::string endpoint = b.bind("tcp://127.0.0.1:*");
  peer.connect(endpoint);
  ASSERT_TRUE(peer_events.wait_for(socket_event::handshake_succeeded, wait_bound));
  void* a_native = a.native();
  b = std::move(a);
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(b.native(), a_native);
  // b's old socket was closed: its peer loses the connection.
  EXPECT_TRUE(peer_events.wait_for(socket_event::disconnected, wait_bound));
}

TEST(SocketTest, DroppedCountSurvivesAMove) {
  context ctx;
  socket_options pull_options = quiet();
  pull_options.max_frames = 1;
  pipeline p(ctx, transport::inproc, pull_options);
  ASSERT_TRUE(p.push.send(make_message("a", "b")));
  message m;
  EXPECT_TRUE(p.pull.recv(m, wait_bound).is(errc::too_large));
  any_socket moved(std::move(p.pull));
  EXPECT_EQ(moved.dropped(), 1U);
}

// ---- monitors ----

TEST(MonitorTest, SeesTheTcpHandshakeSucceed) {
  context ctx;
  any_socket pull(ctx, zmq::socket_type::pull, quiet());
  any_socket push(ctx, zmq::socket_type::push, quiet());
  monitor binder_events(pull);
  monitor connector_events(push);
  const std::string endpoint = pull.bind("tcp://127.0.0.1:*");
  push.connect(endpoint);
  EXPECT_TRUE(connector_events.wait_for(socket_event::handshake_succeeded, wait_bound));
  EXPECT_TRUE(binder_events.wait_for(socket_event::handshake_succeeded, wait_bound));
}

TEST(MonitorTest, ReportsEventsWithTheirEndpoint) {
  context ctx;
  any_socket pull(ctx, zmq::socket_type::pull, quiet());
  monitor events(pull);
  const std::string endpoint = pull.bind("tcp://127.0.0.1:*");
  auto e = events.next(wait_bound);
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->event, socket_event::listening);
  EXPECT_EQ(e->endpoint, endpoint);
}

TEST(MonitorTest, SeesTheConnectionAcceptedAndLost) {
  context ctx;
  any_socket pull(ctx, zmq::socket_type::pull, quiet());
  monitor events(pull);
  const std::string endpoint = pull.bind("tcp://127.0.0.1:*");
  {
    any_socket push(ctx, zmq::socket_type::push, quiet());
    push.connect(endpoint);
    EXPECT_TRUE(events.wait_for(socket_event::accepted, wait_bound));
    EXPECT_TRUE(events.wait_for(socket_event::handshake_succeeded, wait_bound));
  }
  EXPECT_TRUE(events.wait_for(socket_event::disconnected, wait_bound));
}

TEST(MonitorTest, NextTimesOutWhenNothingHappens) {
  context ctx;
  any_socket pull(ctx, zmq::socket_type::pull, quiet());
  monitor events(pull);
  auto e = events.next(10ms);
  EXPECT_TRUE(e.is(errc::timeout));
  EXPECT_FALSE(events.wait_for(socket_event::connected, 10ms));
}

TEST(MonitorTest, OutlivingItsSocketIsHarmless) {
  context ctx;
  auto pull = std::make_unique<any_socket>(ctx, zmq::socket_type::pull, quiet());
  monitor events(*pull);
  (void)pull->bind("tcp://127.0.0.1:*");
  pull.reset();
  // The socket is gone; the monitor drains what is left and then times out.
  for (int i = 0; i < 10; ++i) {
    auto e = events.next(20ms);
    if (!e) {
      EXPECT_TRUE(e.is(errc::timeout));
      break;
    }
  }
}

}  // namespace
}  // namespace fabric
