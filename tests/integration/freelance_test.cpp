// Tests Freelance (10/FLP) over real sockets on loopback: requests over every transport, failover
// when a server stops, hangs or throws, no live server, late and duplicate replies, the
// asynchronous client, a server without a handler and one on a reactor, wildcard ports, CURVE, and
// wire compatibility both ways with raw cppzmq sockets playing the other side as 10/FLP says.
#include "support/support.hpp"

#include <fabric/freelance.hpp>
#include <fabric/reactor.hpp>

#include <gtest/gtest.h>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using fabric::context;
using fabric::errc;
using fabric::message;
using fabric::testing::eventually;
using fabric::testing::loopback_endpoint;
using fabric::testing::to_strings;
using fabric::testing::transport;
using fabric::testing::wait_bound;
namespace fl = fabric::freelance;
using strings = std::vector<std::string>;

// Short timings, so that failover shows within a test's patience.
fl::client_options fast(std::vector<std::string> servers) {
  fl::client_options o;
  o.servers = std::move(servers);
  o.ping_interval = 100ms;
  o.server_expiry = 300ms;
  o.timeout = 200ms;
  o.request_expiry = 3000ms;
  return o;
}

// A server whose handler answers "<name>:<request>".
std::unique_ptr<fl::server> named_server(context& ctx, const std::string& endpoint, const std::string& name) {
  auto s = std::make_unique<fl::server>(ctx, fl::server_options{.endpoint = endpoint}, [name](message&& m) {
    return message(name + ":" + std::string(m.view(0)));
  });
  s->start();
  return s;
}

std::string tcp() { return "tcp://127.0.0.1:*"; }

// A tcp endpoint on loopback whose port was free a moment ago (bound by a plain socket and
// released at once, unlike a libzmq listener, which closes in the background).
std::string free_tcp_endpoint() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  unsigned short port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0) ::close(fd);
  EXPECT_NE(port, 0) << "no free port on loopback";
  return "tcp://127.0.0.1:" + std::to_string(port);
}

// named_server() on an endpoint a server just closed: libzmq closes a listener in the background,
// so the port may still be taken for a moment. Tries again until the bind succeeds (bounded).
std::unique_ptr<fl::server> restarted_server(context& ctx, const std::string& endpoint, const std::string& name) {
  const auto deadline = std::chrono::steady_clock::now() + wait_bound;
  for (;;) {
    try {
      return named_server(ctx, endpoint, name);
    } catch (const fabric::error&) {
      if (std::chrono::steady_clock::now() >= deadline) throw;
      std::this_thread::yield();
    }
  }
}

// A server without a handler, on a thread: it answers pings (inside recv()) and keeps every
// request it is given without answering, as a server that hangs mid-request looks from outside.
class mute_server {
 public:
  mute_server(context& ctx, const std::string& endpoint) : server_(ctx, {.endpoint = endpoint}) {
    thread_ = std::thread([this] {
      fl::request r;
      while (!stop_) {
        if (server_.recv(r, 10ms)) ++swallowed_;
      }
    });
  }
  ~mute_server() {
    stop_ = true;
    thread_.join();
  }
  const std::string& endpoint() const { return server_.endpoint(); }
  int swallowed() const { return swallowed_; }

 private:
  fl::server server_;
  std::atomic<bool> stop_{false};
  std::atomic<int> swallowed_{0};
  std::thread thread_;
};

// Pumps an async client until `done()` holds (bounded): it only works when called.
template <class Pred>
bool pump_until(fl::async_client& c, Pred done, std::chrono::milliseconds bound = wait_bound) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  fl::reply ignored;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    auto r = c.recv(ignored, 5ms);
    if (r) ADD_FAILURE() << "an unexpected completion for " << ignored.id;
  }
  return true;
}

// --- every transport ---

class FreelanceTransportTest : public ::testing::TestWithParam<transport> {};

TEST_P(FreelanceTransportTest, EveryRequestIsAnsweredByTheFirstLiveServer) {
  context ctx;
  auto a = named_server(ctx, loopback_endpoint(GetParam(), "fla"), "a");
  auto b = named_server(ctx, loopback_endpoint(GetParam(), "flb"), "b");
  fl::client c(ctx, fast({a->endpoint(), b->endpoint()}));
  // Until both servers have answered a ping, a request goes to whichever did; from then on both
  // are live and the first listed gets every one.
  int sent = 0;
  int with_both_live = 0;
  while (with_both_live < 10 && sent < 500) {
    const bool both = c.live_servers() == 2;
    const std::string n = std::to_string(sent++);
    auto r = c.request(message("r" + n));
    ASSERT_TRUE(r) << r.error().message();
    const auto text = to_strings(*r);
    ASSERT_EQ(text.size(), 1u);
    if (both) {
      EXPECT_EQ(text[0], "a:r" + n);
      ++with_both_live;
    } else {
      EXPECT_TRUE(text[0] == "a:r" + n || text[0] == "b:r" + n) << text[0];
    }
  }
  EXPECT_EQ(with_both_live, 10);
  EXPECT_EQ(c.stats().replies, static_cast<std::uint64_t>(sent));
  EXPECT_EQ(c.stats().retries, 0u);
  EXPECT_EQ(c.stats().malformed, 0u);
  EXPECT_EQ(c.stats().late_replies, 0u);
}

INSTANTIATE_TEST_SUITE_P(Transports, FreelanceTransportTest, ::testing::ValuesIn(fabric::testing::all_transports),
                         fabric::testing::transport_name{});

// --- failover ---

TEST(FreelanceTest, ARequestGoesToAnotherServerWhenTheAnsweringOneStops) {
  context ctx;
  std::map<std::string, std::unique_ptr<fl::server>> by_name;
  by_name["a"] = named_server(ctx, tcp(), "a");
  by_name["b"] = named_server(ctx, tcp(), "b");
  fl::client c(ctx, fast({by_name["a"]->endpoint(), by_name["b"]->endpoint()}));
  auto first = c.request(message("1"));
  ASSERT_TRUE(first) << first.error().message();
  const std::string answering = std::string(first->view(0)).substr(0, 1);
  const std::string other = answering == "a" ? "b" : "a";
  by_name.erase(answering);  // its process is gone
  for (int i = 2; i < 10; ++i) {
    auto r = c.request(message(std::to_string(i)));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(to_strings(*r), strings{other + ":" + std::to_string(i)});
  }
}

TEST(FreelanceTest, AServerThatRestartsOnItsEndpointIsUsedAgain) {
  context ctx;
  auto a = named_server(ctx, tcp(), "a");
  const std::string endpoint = a->endpoint();
  auto o = fast({endpoint});
  o.request_expiry = 1500ms;  // a reconnection and a ping fit in it, even on a loaded machine
  fl::client c(ctx, o);
  ASSERT_TRUE(c.request(message("1")));
  a.reset();
  auto gone = c.request(message("2"));
  EXPECT_FALSE(gone);
  a = restarted_server(ctx, endpoint, "a2");
  auto back = c.request(message("3"));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(to_strings(*back), strings{"a2:3"});
}

TEST(FreelanceTest, NoLiveServerIsReportedAsPeerUnreachable) {
  context ctx;
  // An endpoint where nothing listens.
  const std::string nowhere = free_tcp_endpoint();
  auto o = fast({nowhere});
  o.request_expiry = 300ms;
  fl::client c(ctx, o);
  message body("hello");
  auto r = c.request(std::move(body));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.is(errc::peer_unreachable)) << r.error().message();
  EXPECT_EQ(to_strings(body), strings{"hello"}) << "a failed request leaves its body as it was";
  EXPECT_EQ(c.stats().unavailable, 1u);
  EXPECT_EQ(c.stats().attempts, 0u);
  EXPECT_EQ(c.live_servers(), 0u);
}

TEST(FreelanceTest, ARequestTheServerSwallowsTimesOutAndIsAnsweredByAnother) {
  context ctx;
  mute_server mute(ctx, tcp());
  auto b = named_server(ctx, tcp(), "b");
  fl::client c(ctx, fast({mute.endpoint(), b->endpoint()}));
  for (int i = 0; i < 10 && mute.swallowed() == 0; ++i) {
    auto r = c.request(message("x"));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(to_strings(*r), strings{"b:x"});
  }
  EXPECT_GE(mute.swallowed(), 1);
  EXPECT_GE(c.stats().retries, 1u);
}

TEST(FreelanceTest, ServersThatAnswerPingsButNoRequestsEndInTimeout) {
  context ctx;
  mute_server mute(ctx, tcp());
  auto o = fast({mute.endpoint()});
  o.request_expiry = 500ms;
  fl::client c(ctx, o);
  auto r = c.request(message("x"));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.is(errc::timeout)) << r.error().message();
  EXPECT_EQ(c.stats().expired, 1u);
  EXPECT_GE(c.stats().attempts, 2u) << "sent again to the only live server after each timeout";
}

TEST(FreelanceTest, AHandlerThatThrowsLeavesTheRequestToAnotherServer) {
  context ctx;
  fl::server bad(ctx, {.endpoint = tcp()}, [](message&&) -> message { throw std::runtime_error("broken"); });
  bad.start();
  auto good = named_server(ctx, tcp(), "good");
  fl::client c(ctx, fast({bad.endpoint(), good->endpoint()}));
  // Once both are live, the failing server is first in line for each request.
  for (int i = 0; i < 500 && bad.stats().handler_failures == 0; ++i) {
    auto r = c.request(message("x"));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(to_strings(*r), strings{"good:x"});
  }
  EXPECT_GE(bad.stats().handler_failures, 1u);
}

// --- the asynchronous client ---

TEST(FreelanceAsyncTest, ManyRequestsAreAnsweredExactlyOnceAcrossThreeServers) {
  context ctx;
  auto a = named_server(ctx, tcp(), "a");
  auto b = named_server(ctx, tcp(), "b");
  auto s3 = named_server(ctx, tcp(), "c");
  fl::async_client c(ctx, fast({a->endpoint(), b->endpoint(), s3->endpoint()}));
  ASSERT_TRUE(pump_until(c, [&] { return c.live_servers() == 3; }));
  constexpr int total = 600;
  std::map<std::uint64_t, int> sent;
  std::map<int, int> answered;
  std::set<std::string> servers;
  int next = 0;
  fl::reply r;
  const auto deadline = std::chrono::steady_clock::now() + wait_bound;
  while (static_cast<int>(answered.size()) < total && std::chrono::steady_clock::now() < deadline) {
    while (next < total && c.outstanding() < 32) {
      auto id = c.send(message(std::to_string(next)));
      ASSERT_TRUE(id) << id.error().message();
      sent[*id] = next++;
    }
    auto got = c.recv(r, 100ms);
    if (!got) continue;
    ASSERT_EQ(r.status, fl::reply_status::ok);
    const int n = sent.at(r.id);
    ++answered[n];
    servers.insert(r.server);
    EXPECT_EQ(to_strings(r.body)[0].substr(2), std::to_string(n));
  }
  ASSERT_EQ(answered.size(), static_cast<std::size_t>(total));
  for (const auto& [n, times] : answered) EXPECT_EQ(times, 1) << n;
  EXPECT_EQ(servers.size(), 3u) << "requests spread over every live server";
  EXPECT_EQ(c.outstanding(), 0u);
  EXPECT_EQ(c.stats().replies, static_cast<std::uint64_t>(total));
}

TEST(FreelanceAsyncTest, CopiesGoToTwoServersAndTheSecondAnswerIsDroppedAsADuplicate) {
  context ctx;
  auto a = named_server(ctx, tcp(), "a");
  auto b = named_server(ctx, tcp(), "b");
  auto o = fast({a->endpoint(), b->endpoint()});
  o.copies = 2;
  fl::async_client c(ctx, o);
  ASSERT_TRUE(pump_until(c, [&] { return c.live_servers() == 2; }));
  auto id = c.send(message("x"));
  ASSERT_TRUE(id);
  auto r = c.recv(wait_bound);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->id, *id);
  ASSERT_TRUE(pump_until(c, [&] { return c.stats().late_replies == 1; }));
  EXPECT_EQ(a->stats().replies + b->stats().replies, 2u);
  EXPECT_EQ(c.stats().replies, 1u);
}

TEST(FreelanceAsyncTest, CancelledAndExpiredRequestsComeBackOnceOrNotAtAll) {
  context ctx;
  mute_server mute(ctx, tcp());
  fl::async_client c(ctx, fast({mute.endpoint()}));
  ASSERT_TRUE(pump_until(c, [&] { return c.live_servers() == 1; }));
  auto forgotten = c.send(message("a"));
  auto expiring = c.send(message("b"), 300ms);
  ASSERT_TRUE(forgotten && expiring);
  EXPECT_TRUE(c.cancel(*forgotten));
  EXPECT_EQ(c.outstanding(), 1u);
  ASSERT_TRUE(c.next_deadline());
  auto r = c.recv(wait_bound);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->id, *expiring);
  EXPECT_EQ(r->status, fl::reply_status::expired);
  EXPECT_TRUE(c.recv(50ms).is(errc::timeout));
  fl::reply none;
  EXPECT_TRUE(c.try_recv(none).is(errc::would_block));
  EXPECT_EQ(c.stats().cancelled, 1u);
}

TEST(FreelanceAsyncTest, MaxOutstandingRefusesWithBackPressure) {
  context ctx;
  auto a = named_server(ctx, tcp(), "a");
  auto o = fast({a->endpoint()});
  o.max_outstanding = 2;
  fl::async_client c(ctx, o);
  ASSERT_TRUE(c.send(message("1")));
  ASSERT_TRUE(c.send(message("2")));
  message third("3");
  EXPECT_TRUE(c.send(std::move(third)).is(errc::back_pressure));
  EXPECT_EQ(to_strings(third), strings{"3"});
}

// --- the server ---

TEST(FreelanceServerTest, WithoutAHandlerTheApplicationReceivesAndReplies) {
  context ctx;
  fl::server s(ctx, {.endpoint = tcp()});
  std::atomic<bool> stop{false};
  std::thread app([&] {
    fl::request r;
    while (!stop) {
      if (!s.recv(r, 10ms)) continue;
      message answer;
      answer.push_back("got");
      answer.push_back(r.body.view(0));
      EXPECT_TRUE(s.reply(r, std::move(answer)));
    }
  });
  fl::client c(ctx, fast({s.endpoint()}));
  auto reply = c.request(message("hello"));
  stop = true;
  app.join();
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(to_strings(*reply), (strings{"got", "hello"}));
  EXPECT_GE(s.stats().pings, 1u);
}

TEST(FreelanceServerTest, RunsAttachedToAReactorTheApplicationDrives) {
  context ctx;
  fl::server s(ctx, {.endpoint = tcp()}, [](message&& m) { return std::move(m); });
  fabric::reactor r;
  s.attach(r);
  // The client asks from another thread; the reactor runs here, on the test's thread, and stops
  // once the answer is in (or after wait_bound).
  std::atomic<bool> done{false};
  std::optional<fabric::result<message>> reply;
  std::thread user([&] {
    fl::client c(ctx, fast({s.endpoint()}));
    reply.emplace(c.request(message("echo")));
    done = true;
  });
  r.every(1ms, [&] {
    if (done) r.stop();
  });
  r.after(wait_bound, [&] { r.stop(); });
  (void)r.run();
  user.join();
  EXPECT_TRUE(s.detach(r));
  ASSERT_TRUE(reply && *reply) << (reply ? reply->error().message() : "no answer");
  EXPECT_EQ(to_strings(**reply), strings{"echo"});
}

TEST(FreelanceServerTest, AWildcardPortIsResolvedBeforeTheIdentityIsSet) {
  context ctx;
  fl::server s(ctx, {.endpoint = "tcp://127.0.0.1:*"}, [](message&& m) { return std::move(m); });
  EXPECT_TRUE(s.endpoint().starts_with("tcp://127.0.0.1:"));
  EXPECT_EQ(s.endpoint().find('*'), std::string::npos);
  EXPECT_NE(s.endpoint(), "tcp://127.0.0.1:0");
  s.start();
  fl::client c(ctx, fast({s.endpoint()}));
  EXPECT_TRUE(c.request(message("x")));
}

TEST(FreelanceServerTest, ABindAddressApartFromThePublicEndpoint) {
  context ctx;
  const std::string endpoint = free_tcp_endpoint();
  const std::string port = endpoint.substr(endpoint.rfind(':') + 1);
  fl::server s(ctx, {.endpoint = "tcp://localhost:" + port, .bind = "tcp://127.0.0.1:" + port},
               [](message&& m) { return std::move(m); });
  s.start();
  fl::client c(ctx, fast({"tcp://localhost:" + port}));
  auto r = c.request(message("x"));
  EXPECT_TRUE(r) << r.error().message();
}

TEST(FreelanceServerTest, RefusesWhatCannotWork) {
  context ctx;
  using fabric::testing::expect_error;
  expect_error(errc::invalid_argument, [&] { fl::server s(ctx, {.endpoint = ""}); });
  expect_error(errc::invalid_argument, [&] { fl::server s(ctx, {.endpoint = "tcp://*:*"}); });
  expect_error(errc::invalid_argument, [&] { fl::server s(ctx, {.endpoint = "tcp://*:5555"}); });
  expect_error(errc::invalid_argument, [&] { fl::server s(ctx, {.endpoint = "tcp://h:1", .bind = "tcp://*:*"}); });
  expect_error(errc::invalid_argument, [&] { fl::server s(ctx, {.endpoint = "tcp://" + std::string(260, 'h') + ":1"}); });
  expect_error(errc::invalid_argument, [&] { fl::server s(ctx, {.endpoint = tcp()}, fl::server::handler()); });
  fl::server manual(ctx, {.endpoint = tcp()});
  expect_error(errc::invalid_state, [&] { manual.start(); });
  fl::server handled(ctx, {.endpoint = tcp()}, [](message&& m) { return std::move(m); });
  fl::request r;
  expect_error(errc::invalid_state, [&] { (void)handled.recv(r, 1ms); });
  expect_error(errc::invalid_argument, [&] { fl::client c(ctx, {.servers = {}}); });
  expect_error(errc::invalid_argument, [&] {
    auto o = fast({"tcp://127.0.0.1:1"});
    o.socket.routing_id = "me";
    fl::client c(ctx, o);
  });
  expect_error(errc::invalid_argument, [&] {
    auto o = fast({"tcp://127.0.0.1:1"});
    o.server_keys = {"not a key"};
    fl::client c(ctx, o);
  });
}

// --- CURVE ---

TEST(FreelanceCurveTest, ServersWithKeysOfTheirOwnAnswerAnAllowedClientOnly) {
  if (!zmq_has("curve")) GTEST_SKIP() << "libzmq was built without CURVE";
  context ctx;
  const auto key_a = fabric::curve_keypair::generate();
  const auto key_b = fabric::curve_keypair::generate();
  const auto client_key = fabric::curve_keypair::generate();
  ctx.allow_curve_client(client_key.public_key);
  const auto secured = [&](const fabric::curve_keypair& k, const std::string& name) {
    auto s = std::make_unique<fl::server>(
        ctx, fl::server_options{.endpoint = tcp(), .socket = {.security = fabric::curve_server{k}}},
        [name](message&&) { return message(name); });
    s->start();
    return s;
  };
  auto a = secured(key_a, "a");
  auto b = secured(key_b, "b");
  auto o = fast({a->endpoint(), b->endpoint()});
  o.copies = 2;
  o.socket.security = fabric::curve_client{client_key, key_a.public_key};
  o.server_keys = {key_a.public_key, key_b.public_key};
  fl::async_client c(ctx, o);
  ASSERT_TRUE(pump_until(c, [&] { return c.live_servers() == 2; }));
  auto id = c.send(message("x"));
  ASSERT_TRUE(id);
  ASSERT_TRUE(c.recv(wait_bound));

  auto stranger = fast({a->endpoint()});
  stranger.request_expiry = 300ms;
  stranger.socket.security = fabric::curve_client{fabric::curve_keypair::generate(), key_a.public_key};
  fl::client intruder(ctx, stranger);
  auto refused = intruder.request(message("x"));
  EXPECT_TRUE(refused.is(errc::peer_unreachable)) << (refused ? "answered" : refused.error().message());
}

// --- wire compatibility with raw cppzmq peers ---

// A 10/FLP server written with raw cppzmq, as any other implementation would be: a ROUTER whose
// identity is its endpoint, PING -> PONG, control | body -> control | "raw:" body.
class raw_server {
 public:
  raw_server(context& ctx, const std::string& endpoint) : sock_(ctx.native(), zmq::socket_type::router) {
    sock_.set(zmq::sockopt::routing_id, endpoint);
    sock_.set(zmq::sockopt::linger, 0);
    sock_.bind(endpoint);
    thread_ = std::thread([this] { serve(); });
  }
  ~raw_server() {
    stop_ = true;
    thread_.join();
  }

 private:
  void serve() {
    while (!stop_) {
      zmq::pollitem_t items[] = {{sock_.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 1, std::chrono::milliseconds(10));
      if ((items[0].revents & ZMQ_POLLIN) == 0) continue;
      std::vector<zmq::message_t> in;
      (void)zmq::recv_multipart(sock_, std::back_inserter(in));
      std::vector<zmq::message_t> out;
      out.push_back(std::move(in[0]));
      if (in.size() == 2 && in[1].to_string_view() == "PING") {
        out.emplace_back(std::string_view("PONG"));
      } else if (in.size() >= 3) {
        out.push_back(std::move(in[1]));
        out.emplace_back("raw:" + std::string(in[2].to_string_view()));
      } else {
        continue;
      }
      (void)zmq::send_multipart(sock_, out);
    }
  }
  zmq::socket_t sock_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(FreelanceInteropTest, OurClientsWorkWithARawCppzmqServer) {
  context ctx;
  const std::string endpoint = free_tcp_endpoint();
  raw_server raw(ctx, endpoint);
  fl::client c(ctx, fast({endpoint}));
  for (int i = 0; i < 5; ++i) {
    auto r = c.request(message("q" + std::to_string(i)));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(to_strings(*r), strings{"raw:q" + std::to_string(i)});
  }
  EXPECT_GE(c.stats().pongs, 1u);
  EXPECT_EQ(c.stats().malformed, 0u);
}

// Sends `frames` from a raw client ROUTER to `server` until it is accepted (the connection may not
// be up yet: EHOSTUNREACH with ROUTER_MANDATORY). Returns false after wait_bound.
bool raw_send(zmq::socket_t& s, const std::string& server, const strings& frames) {
  const auto deadline = std::chrono::steady_clock::now() + wait_bound;
  for (;;) {
    std::vector<zmq::message_t> out;
    out.emplace_back(server);
    for (const auto& f : frames) out.emplace_back(f);
    try {
      if (zmq::send_multipart(s, out, zmq::send_flags::dontwait)) return true;
    } catch (const zmq::error_t& e) {
      if (e.num() != EHOSTUNREACH) throw;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::yield();
  }
}

strings raw_recv(zmq::socket_t& s) {
  std::vector<zmq::message_t> in;
  if (!zmq::recv_multipart(s, std::back_inserter(in))) return {};
  strings out;
  for (const auto& f : in) out.emplace_back(f.to_string_view());
  return out;
}

TEST(FreelanceInteropTest, ARawCppzmqClientWorksWithOurServer) {
  context ctx;
  fl::server s(ctx, {.endpoint = tcp()}, [](message&& m) {
    message out;
    out.push_back("ours:" + std::string(m.view(0)));
    out.push_back("second frame");
    return out;
  });
  s.start();
  zmq::socket_t raw(ctx.native(), zmq::socket_type::router);
  raw.set(zmq::sockopt::router_mandatory, 1);
  raw.set(zmq::sockopt::linger, 0);
  raw.set(zmq::sockopt::rcvtimeo, static_cast<int>(wait_bound.count()));
  raw.connect(s.endpoint());

  ASSERT_TRUE(raw_send(raw, s.endpoint(), {"PING"}));
  EXPECT_EQ(raw_recv(raw), (strings{s.endpoint(), "PONG"}));
  // A foreign client's control frame is anything: decimal text here. It comes back unchanged.
  ASSERT_TRUE(raw_send(raw, s.endpoint(), {"17", "hello"}));
  EXPECT_EQ(raw_recv(raw), (strings{s.endpoint(), "17", "ours:hello", "second frame"}));
  // Malformed input is dropped and counted; the server goes on.
  ASSERT_TRUE(raw_send(raw, s.endpoint(), {"nonsense"}));
  ASSERT_TRUE(raw_send(raw, s.endpoint(), {std::string(300, 'c'), "too long a control frame"}));
  ASSERT_TRUE(raw_send(raw, s.endpoint(), {"", "empty control"}));
  EXPECT_EQ(raw_recv(raw), (strings{s.endpoint(), "", "ours:empty control", "second frame"}));
  EXPECT_TRUE(eventually([&] { return s.stats().malformed == 2; }));
  EXPECT_EQ(s.stats().requests, 2u);
}

}  // namespace
