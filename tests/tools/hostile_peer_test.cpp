// Hostile peers against the real daemons: fabric-broker (and fabric-titanic behind it) run as
// child processes on loopback with small bounds, and raw libzmq sockets and raw TCP connections
// send them garbage, floods of identities, oversized frames, requests whose replies are never
// read, and connections that come and go. After each attack the daemon must still be up, answer
// a well-behaved round trip, have kept within its configured bounds (read through mmi.stats), and
// hold no more file descriptors or memory than its bounds allow (read from /proc/<pid>).
//
// FABRIC_HOSTILE_SEED fixes the random attacks' seed (printed on failure); FABRIC_HOSTILE_ROUNDS
// multiplies the number of rounds for a longer run.
#include <fabric/context.hpp>
#include <fabric/majordomo_worker.hpp>
#include <fabric/message.hpp>
#include <fabric/titanic_client.hpp>

#include "support/process.hpp"
#include "support/raw_frames.hpp"
#include "support/support.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstring>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using fabric::testing::child_process;
using fabric::testing::raw_frames;
using fabric::testing::recv_frames;
using fabric::testing::send_frames;
using fabric::testing::temp_dir;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

#if defined(FABRIC_BROKER_TOOL) && defined(FABRIC_TITANIC_TOOL)
constexpr std::string_view broker_path = FABRIC_BROKER_TOOL;
constexpr std::string_view titanic_path = FABRIC_TITANIC_TOOL;
#else
constexpr std::string_view broker_path;  // tools not built: every test skips
constexpr std::string_view titanic_path;
#endif

// Bounds every wait for a child, a reply or a figure to settle: long enough for a loaded machine.
constexpr std::chrono::milliseconds bound = 20s;
// File descriptors a daemon may hold above its baseline once the hostile sockets have closed
// (a connection of the well-behaved probes may still be open).
constexpr long fd_margin = 3;

std::uint64_t seed() {
  if (const auto s = fabric::testing::env_number("FABRIC_HOSTILE_SEED")) return *s;
  return std::random_device{}();
}

std::size_t rounds(std::size_t base) {
  const auto factor = fabric::testing::env_number("FABRIC_HOSTILE_ROUNDS");
  return base * static_cast<std::size_t>(factor && *factor > 0 ? *factor : 1);
}

// A daemon as a child process, started with `path` and `args`.
class daemon_process : public child_process {
 public:
  daemon_process(std::string_view path, const std::vector<std::string>& args) : child_process(with(path, args)) {}

  // The endpoint it printed once it serves; empty when it did not within the bound.
  std::string endpoint() { return fabric::testing::listening_endpoint(*this, bound); }

 private:
  static std::vector<std::string> with(std::string_view path, const std::vector<std::string>& args) {
    std::vector<std::string> words{std::string(path)};
    words.insert(words.end(), args.begin(), args.end());
    return words;
  }
};

// What /proc says of a process: resident memory (all, and anonymous only: a journal's mapped file
// counts in the first) and open file descriptors. -1 when the process is gone or a zombie.
struct figures {
  long rss_kib = -1;
  long anon_kib = -1;
  long fds = -1;
};

figures measure(pid_t pid) {
  figures f;
  const std::string dir = "/proc/" + std::to_string(pid);
  std::ifstream status(dir + "/status");
  std::string line;
  bool zombie = false;
  while (std::getline(status, line)) {
    const auto number = [&line] {
      long v = -1;
      const auto at = line.find_first_of("0123456789");
      if (at != std::string::npos) std::from_chars(line.data() + at, line.data() + line.size(), v);
      return v;
    };
    if (line.rfind("State:", 0) == 0) zombie = line.find('Z') != std::string::npos;
    if (line.rfind("VmRSS:", 0) == 0) f.rss_kib = number();
    if (line.rfind("RssAnon:", 0) == 0) f.anon_kib = number();
  }
  if (zombie || f.rss_kib < 0) return {};
  std::error_code ec;
  long n = 0;
  for (std::filesystem::directory_iterator it(dir + "/fd", ec), end; !ec && it != end; it.increment(ec)) ++n;
  if (!ec) f.fds = n;
  return f;
}

bool alive(pid_t pid) { return measure(pid).fds >= 0; }

// The CPU time `pid` has used, user and system, in clock ticks; -1 when it cannot be read.
long cpu_ticks(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(stat, text);
  // The fields after the command name, which is in parentheses and may hold spaces.
  const auto close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  long utime = -1;
  long stime = -1;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return utime < 0 || stime < 0 ? -1 : utime + stime;
}

std::string describe(const figures& f) {
  return "rss " + std::to_string(f.rss_kib) + " KiB (anon " + std::to_string(f.anon_kib) + " KiB), " +
         std::to_string(f.fds) + " fds";
}

// Prints a figure and records it as a property of the test, so a run's report can quote it.
void report(const std::string& name, const figures& f) {
  std::cout << "[ figures  ] " << name << ": " << describe(f) << std::endl;
  ::testing::Test::RecordProperty(name + "_rss_kib", std::to_string(f.rss_kib));
  ::testing::Test::RecordProperty(name + "_anon_kib", std::to_string(f.anon_kib));
  ::testing::Test::RecordProperty(name + "_fds", std::to_string(f.fds));
}

// The number after "key": in a JSON document (the first occurrence: the broker's top-level
// counters come before its per-service ones).
std::optional<long long> json_number(std::string_view doc, std::string_view key) {
  const std::string needle = "\"" + std::string(key) + "\":";
  const auto at = doc.find(needle);
  if (at == std::string_view::npos) return std::nullopt;
  long long v = 0;
  const char* begin = doc.data() + at + needle.size();
  const auto [end, ec] = std::from_chars(begin, doc.data() + doc.size(), v);
  if (ec != std::errc{} || end == begin) return std::nullopt;
  return v;
}

long long number(std::string_view doc, std::string_view key) { return json_number(doc, key).value_or(-1); }

std::size_t services_in(std::string_view doc) {
  std::size_t n = 0;
  for (auto at = doc.find("{\"name\":"); at != std::string_view::npos; at = doc.find("{\"name\":", at + 1)) ++n;
  return n;
}

zmq::socket_t make_socket(zmq::context_t& ctx, zmq::socket_type type, const std::string& endpoint) {
  zmq::socket_t s(ctx, type);
  s.set(zmq::sockopt::linger, 0);
  s.connect(endpoint);
  return s;
}

// A well-behaved 7/MDP client on a raw REQ socket, Lazy Pirate style: a new socket after a
// silence. Returns the reply's frames after the header and service, or nothing within `bound`.
std::optional<raw_frames> mdp_call(zmq::context_t& ctx, const std::string& endpoint, const std::string& service,
                                   const raw_frames& body, std::chrono::milliseconds wait = 2s) {
  const auto deadline = clock_type::now() + bound;
  while (clock_type::now() < deadline) {
    auto req = make_socket(ctx, zmq::socket_type::req, endpoint);
    send_frames(req, fabric::testing::join({"MDPC01", service}, body));
    auto reply = recv_frames(req, wait);
    if (reply && reply->size() >= 2 && (*reply)[0] == "MDPC01" && (*reply)[1] == service)
      return raw_frames(reply->begin() + 2, reply->end());
  }
  return std::nullopt;
}

// The broker's counters (mmi.stats); empty when it does not answer within `bound`.
std::string broker_stats(zmq::context_t& ctx, const std::string& endpoint) {
  const auto reply = mdp_call(ctx, endpoint, "mmi.stats", {""});
  if (!reply || reply->size() != 2 || (*reply)[0] != "200") return {};
  return (*reply)[1];
}

// Asks mmi.stats until `done(stats)` holds, at most `bound`; each question is a round trip through
// the broker, which paces the loop. Returns the last stats read (empty if the broker never answered).
std::string stats_until(zmq::context_t& ctx, const std::string& endpoint,
                        const std::function<bool(std::string_view)>& done) {
  const auto deadline = clock_type::now() + bound;
  std::string stats;
  do {
    stats = broker_stats(ctx, endpoint);
    if (!stats.empty() && done(stats)) return stats;
  } while (clock_type::now() < deadline);
  return stats;
}

// Waits until `pid` holds at most `limit` file descriptors, pacing each look with a broker round
// trip. Returns the last figures read.
figures fds_settle(zmq::context_t& ctx, const std::string& broker, pid_t pid, long limit) {
  const auto deadline = clock_type::now() + bound;
  figures f = measure(pid);
  while (f.fds > limit && clock_type::now() < deadline) {
    (void)broker_stats(ctx, broker);
    f = measure(pid);
  }
  return f;
}

// A service on a thread of its own, a real fabric worker: answers each request with
// `answer(body)`; by default the body itself.
class echo_worker {
 public:
  using answer_fn = std::function<fabric::message(fabric::message&&)>;

  echo_worker(fabric::context& ctx, const std::string& broker, const std::string& service, answer_fn answer = {})
      : worker_(ctx, {.broker = broker, .service = service, .heartbeat_interval = 100ms}),
        thread_([this, answer](std::stop_token stop) {
          while (!stop.stop_requested()) {
            auto req = worker_.recv(20ms);
            if (!req) continue;
            ++requests_;
            fabric::message body = std::move(req->body);
            if (answer) body = answer(std::move(body));
            (void)worker_.reply(*req, std::move(body));
          }
        }) {}

  std::size_t requests() const { return requests_; }

 private:
  fabric::mdp::worker worker_;
  std::atomic<std::size_t> requests_{0};
  std::jthread thread_;  // last: stopped and joined before the worker goes
};

// Answers "done:<first frame>", so a Titanic reply tells which request it answers.
fabric::message done(fabric::message&& body) {
  return fabric::make_message("done:" + std::string(body.empty() ? "" : body.view(0)));
}

std::string random_bytes(std::mt19937_64& rng, std::size_t max_size) {
  std::uniform_int_distribution<std::size_t> size(0, max_size);
  std::uniform_int_distribution<int> byte(0, 255);
  std::string s(size(rng), '\0');
  for (auto& c : s) c = static_cast<char>(byte(rng));
  return s;
}

// One hostile message: random frames, a valid header with garbage after it, or a 7/MDP command
// byte (0x00 to 0x07) with a random number of frames after it.
raw_frames hostile_message(std::mt19937_64& rng) {
  std::uniform_int_distribution<int> kind(0, 5);
  std::uniform_int_distribution<std::size_t> small(0, 8);
  raw_frames m;
  const auto garbage = [&](std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) m.push_back(random_bytes(rng, 40));
  };
  switch (kind(rng)) {
    case 0:  // anything at all
      garbage(1 + small(rng));
      break;
    case 1:  // a client header, then garbage (sometimes a service, sometimes none)
      m = {"", "MDPC01"};
      garbage(small(rng));
      break;
    case 2:  // a worker header and a command byte, then a random number of frames
    case 3: {
      std::uniform_int_distribution<int> command(0, 7);
      m = {"", "MDPW01", std::string(1, static_cast<char>(command(rng)))};
      garbage(small(rng));
      break;
    }
    case 4: {  // the headers of the other Majordomo version, and near misses of ours
      const std::string headers[] = {"MDPC02", "MDPW02", "MDPC0", "MDPW011", "mdpw01", ""};
      std::uniform_int_distribution<std::size_t> pick(0, std::size(headers) - 1);
      m = {"", headers[pick(rng)]};
      garbage(small(rng));
      break;
    }
    default: {  // more frames than a message may have, or a long return stack before the delimiter
      std::uniform_int_distribution<std::size_t> many(9, 300);
      const std::size_t n = many(rng);
      for (std::size_t i = 0; i < n; ++i) m.push_back(std::string(1, 'x'));
      m.push_back("");
      m.push_back("MDPC01");
      m.push_back("echo");
      m.push_back("body");
      break;
    }
  }
  return m;
}

// Sends without waiting: a hostile peer does not care whether its messages go.
void spray(zmq::socket_t& s, const raw_frames& m) {
  for (std::size_t i = 0; i < m.size(); ++i) {
    const auto flags = zmq::send_flags::dontwait | (i + 1 < m.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    if (!s.send(zmq::buffer(m[i]), flags)) return;
  }
}

// Reads and discards whatever is waiting (a REQ socket that has not sent yet refuses to read).
void drain(zmq::socket_t& s) {
  zmq::message_t m;
  try {
    while (s.recv(m, zmq::recv_flags::dontwait)) {
    }
  } catch (const zmq::error_t&) {
  }
}

// Watches `s` (before it connects) for the transport dropping its connection.
class disconnect_watch {
 public:
  disconnect_watch(zmq::context_t& ctx, zmq::socket_t& s) : monitor_(ctx, zmq::socket_type::pair) {
    static std::atomic<int> next{0};
    const std::string name = "inproc://hostile-monitor-" + std::to_string(next++);
    if (zmq_socket_monitor(s.handle(), name.c_str(), ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CLOSED) != 0)
      throw zmq::error_t();
    monitor_.set(zmq::sockopt::linger, 0);
    monitor_.connect(name);
  }

  // Whether the connection was dropped within `bound`.
  bool dropped() {
    const auto deadline = clock_type::now() + bound;
    while (clock_type::now() < deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
      const auto event = recv_frames(monitor_, left);
      if (!event) return false;
      if (event->front().size() >= 2) {
        std::uint16_t id = 0;
        std::memcpy(&id, event->front().data(), sizeof id);
        if (id == ZMQ_EVENT_DISCONNECTED) return true;
      }
    }
    return false;
  }

 private:
  zmq::socket_t monitor_;
};

// A raw TCP connection to the port of a tcp://host:port endpoint; -1 on failure.
int tcp_connect(const std::string& endpoint) {
  const auto colon = endpoint.rfind(':');
  int port = 0;
  std::from_chars(endpoint.data() + colon + 1, endpoint.data() + endpoint.size(), port);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Writes all of `bytes` to `fd`; false when the connection fails first.
bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// A raw TCP connection that has said what a libzmq DEALER says first (the ZMTP 3.0 greeting
// with the NULL mechanism, then READY), so that what the test writes next is read as frames;
// -1 on failure.
int zmtp_connect(const std::string& endpoint) {
  const int fd = tcp_connect(endpoint);
  if (fd < 0) return -1;
  std::string greeting(64, '\0');
  greeting[0] = '\xff';
  greeting[9] = '\x7f';
  greeting[10] = 3;  // version 3.0
  greeting.replace(12, 4, "NULL");
  std::string ready = "\x05READY";
  ready += static_cast<char>(11);
  ready += "Socket-Type";
  ready += fabric::testing::u32(6);
  ready += "DEALER";
  std::string command{'\x04', static_cast<char>(ready.size())};
  // Then the broker's greeting and READY are read, as a libzmq peer would before its first frame.
  const auto read_exactly = [fd](std::size_t n) {
    std::string got(n, '\0');
    std::size_t at = 0;
    while (at < n) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(bound.count())) != 1) return false;
      const auto r = ::recv(fd, got.data() + at, n - at, 0);
      if (r <= 0) return false;
      at += static_cast<std::size_t>(r);
    }
    return true;
  };
  if (!write_all(fd, greeting + command + ready) || !read_exactly(64 + 2 + ready.size())) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// One ZMTP frame of `payload`, with the MORE flag when `more`.
std::string zmtp_frame(std::string_view payload, bool more) {
  std::string f(1, static_cast<char>(0x02 | (more ? 0x01 : 0x00)));  // long size: 8 octets
  f += fabric::testing::u64(payload.size());
  f += payload;
  return f;
}

class HostileBrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (broker_path.empty()) GTEST_SKIP() << "the tools are not built";
    seed_ = seed();
    RecordProperty("seed", std::to_string(seed_));
    rng_.seed(seed_);
  }

  // Starts the broker with short heartbeats, `extra` flags, and reads its baseline once a
  // well-behaved round trip has gone through it.
  void start(const std::vector<std::string>& extra) {
    std::vector<std::string> args{"--bind", "tcp://127.0.0.1:*", "--heartbeat", "100ms", "--log-level", "error"};
    args.insert(args.end(), extra.begin(), extra.end());
    broker_.emplace(broker_path, args);
    endpoint_ = broker_->endpoint();
    ASSERT_FALSE(endpoint_.empty()) << broker_->err;
    worker_.emplace(fctx_, endpoint_, "echo");
    ASSERT_TRUE(round_trip("warm-up"));
    baseline_ = measure(broker_->pid());
    report("baseline", baseline_);
  }

  // A well-behaved request to the echo worker and its reply.
  bool round_trip(const std::string& body) {
    const auto reply = mdp_call(zctx_, endpoint_, "echo", {body});
    return reply && *reply == raw_frames{body};
  }

  // After an attack: the broker is up, answers a round trip, and gives back the descriptors of
  // the hostile connections; its figures then, reported as `name`.
  figures after(const std::string& name) {
    EXPECT_TRUE(alive(broker_->pid())) << broker_->err;
    EXPECT_TRUE(round_trip("after " + name)) << "seed " << seed_;
    const figures f = fds_settle(zctx_, endpoint_, broker_->pid(), baseline_.fds + fd_margin);
    report(name, f);
    EXPECT_LE(f.fds, baseline_.fds + fd_margin) << "baseline " << describe(baseline_) << ", seed " << seed_;
    return f;
  }

  // Stops the broker: it must still stop cleanly on SIGTERM.
  void stop() {
    worker_.reset();
    broker_->signal(SIGTERM);
    EXPECT_EQ(broker_->finish(), 0) << broker_->err;
  }

  std::uint64_t seed_ = 0;
  std::mt19937_64 rng_;
  zmq::context_t zctx_;
  fabric::context fctx_;
  std::optional<daemon_process> broker_;
  std::string endpoint_;
  std::optional<echo_worker> worker_;
  figures baseline_;
};

TEST_F(HostileBrokerTest, SurvivesRandomFrameSequencesOnDealerReqAndRouterConnections) {
  start({"--max-workers", "32", "--max-services", "16", "--max-queue", "64", "--max-peer-bytes", "262144",
         "--max-total-bytes", "1048576"});
  SCOPED_TRACE("seed " + std::to_string(seed_));

  // Every command byte with every wrong number of frames after it, once, from a DEALER (kept open
  // with the other attackers until the broker has judged what they sent).
  std::vector<zmq::socket_t> peers;
  {
    peers.push_back(make_socket(zctx_, zmq::socket_type::dealer, endpoint_));
    auto& dealer = peers.back();
    for (int command = 0; command <= 7; ++command)
      for (std::size_t extra = 0; extra <= 6; ++extra) {
        raw_frames m{"", "MDPW01", std::string(1, static_cast<char>(command))};
        for (std::size_t i = 0; i < extra; ++i) m.push_back(i % 2 ? "" : "x");
        spray(dealer, m);
      }
    // And the same with the delimiter missing, or doubled.
    spray(dealer, {"MDPW01", "\x01", "echo"});
    spray(dealer, {"", "", "MDPW01", "\x01", "echo"});
  }

  const std::size_t messages = rounds(20000);
  for (int i = 0; i < 4; ++i) peers.push_back(make_socket(zctx_, zmq::socket_type::dealer, endpoint_));
  for (int i = 0; i < 2; ++i) {
    zmq::socket_t req(zctx_, zmq::socket_type::req);
    req.set(zmq::sockopt::linger, 0);
    req.set(zmq::sockopt::req_relaxed, 1);  // sends again without waiting for an answer
    req.connect(endpoint_);
    peers.push_back(std::move(req));
  }
  // A ROUTER that names the broker's connection itself, so it can put any identity frame first.
  {
    zmq::socket_t router(zctx_, zmq::socket_type::router);
    router.set(zmq::sockopt::linger, 0);
    router.set(zmq::sockopt::connect_routing_id, "broker");
    router.connect(endpoint_);
    peers.push_back(std::move(router));
  }
  std::uniform_int_distribution<std::size_t> which(0, peers.size() - 1);
  for (std::size_t n = 0; n < messages; ++n) {
    const std::size_t p = which(rng_);
    auto m = hostile_message(rng_);
    if (p + 1 == peers.size()) m.insert(m.begin(), "broker");
    spray(peers[p], m);
    if (n % 64 == 0)
      for (auto& s : peers) drain(s);
    if (n == messages / 2) {
      // A well-behaved client is served while the garbage flows.
      EXPECT_TRUE(round_trip("during"));
      const figures during = measure(broker_->pid());
      report("during", during);
    }
  }
  // Until the broker has judged what reached it: its counters the same on two questions running.
  long long last = -1;
  const std::string stats = stats_until(zctx_, endpoint_, [&last](std::string_view s) {
    const long long judged = number(s, "malformed") + number(s, "requests") + number(s, "rejected") +
                             number(s, "protocol_errors") + number(s, "workers_registered") +
                             number(s, "workers_refused");
    const bool still = judged == last;
    last = judged;
    return still && number(s, "malformed") > 0;
  });
  ASSERT_FALSE(stats.empty());
  std::cout << "[ stats    ] " << stats.substr(0, stats.find(",\"services\"")) << std::endl;
  EXPECT_LE(number(stats, "workers"), 32);
  EXPECT_LE(services_in(stats), 16U);
  EXPECT_GT(number(stats, "malformed"), 0);
  peers.clear();

  const figures f = after("after");
  // The attack's messages are small and dropped or bounded by the queues: the broker keeps well
  // under the configured byte budget plus a fixed allowance for the runtime's own caches.
  EXPECT_LE(f.rss_kib, baseline_.rss_kib + 1024 + 16 * 1024) << "baseline " << describe(baseline_);
  stop();
}

TEST_F(HostileBrokerTest, EmptyAndOversizedFramesDropTheConnectionNotTheBroker) {
  start({"--max-peer-bytes", "1048576", "--max-total-bytes", "4194304"});

  // Empty frames: alone, many, in place of each part of a request, and more than a message may hold.
  {
    auto dealer = make_socket(zctx_, zmq::socket_type::dealer, endpoint_);
    spray(dealer, {""});
    spray(dealer, {"", ""});
    spray(dealer, {"", "MDPC01", ""});
    spray(dealer, {"", "MDPC01", "", ""});
    spray(dealer, {"", "MDPW01", "", ""});
    spray(dealer, {"", "MDPW01", "\x01", ""});
    spray(dealer, {"", "MDPW01", "\x03", "", ""});
    spray(dealer, raw_frames(300, ""));
    spray(dealer, raw_frames(20, ""));
    // The socket stays open until the broker has them: it drops what it has not sent when it closes.
    const auto empties = stats_until(zctx_, endpoint_, [](std::string_view s) { return number(s, "malformed") >= 3; });
    EXPECT_GE(number(empties, "malformed"), 3) << empties;
  }

  // Frames above the broker's 64 MiB limit: libzmq on the broker's side must drop the
  // connection, which the attacker's socket (set not to reconnect) sees as a disconnection.
  const std::size_t limit = std::size_t{64} << 20;
  const std::string huge(limit + 1, 'h');
  for (int attempt = 0; attempt < 2; ++attempt) {
    zmq::socket_t dealer(zctx_, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 0);
    dealer.set(zmq::sockopt::reconnect_ivl, -1);
    disconnect_watch watch(zctx_, dealer);
    dealer.connect(endpoint_);
    // Sometimes in front of a valid header, sometimes as its body.
    if (attempt == 0)
      send_frames(dealer, {huge});
    else
      send_frames(dealer, {"", "MDPC01", "echo", huge});
    EXPECT_TRUE(watch.dropped()) << "the broker kept the connection of an oversized frame " << attempt;
    EXPECT_TRUE(alive(broker_->pid())) << broker_->err;
    const figures dropped = fds_settle(zctx_, endpoint_, broker_->pid(), baseline_.fds + fd_margin);
    EXPECT_LE(dropped.fds, baseline_.fds + fd_margin);
    report("oversized_" + std::to_string(attempt), dropped);
  }
  // Large frames under the limit are taken, dropped as garbage, and their memory given back.
  {
    auto dealer = make_socket(zctx_, zmq::socket_type::dealer, endpoint_);
    const std::string big(std::size_t{8} << 20, 'b');
    for (int i = 0; i < 4; ++i) send_frames(dealer, {"", "MDPW01", "\x09", big});
    (void)stats_until(zctx_, endpoint_, [](std::string_view s) { return number(s, "malformed") >= 7; });
  }
  const figures f = after("after");
  // Nothing of the big frames is kept: within the byte budget of the flags plus a fixed
  // allowance for the allocator's caches.
  EXPECT_LE(f.rss_kib, baseline_.rss_kib + 4 * 1024 + 32 * 1024) << "baseline " << describe(baseline_);
  stop();
}

TEST_F(HostileBrokerTest, AFloodOfWorkerIdentitiesStaysWithinMaxWorkersAndMaxServices) {
  constexpr long max_workers = 32;
  constexpr long max_services = 16;
  start({"--max-workers", std::to_string(max_workers), "--max-services", std::to_string(max_services),
         "--max-queue", "16", "--max-queued-total", "64"});
  SCOPED_TRACE("seed " + std::to_string(seed_));

  const std::size_t waves = rounds(6);
  constexpr std::size_t per_wave = 256;
  long long readies = 0;
  long long most_workers = 0;
  std::size_t most_services = 0;
  std::uniform_int_distribution<int> service(0, 199);
  for (std::size_t wave = 0; wave < waves; ++wave) {
    std::vector<zmq::socket_t> fakes;
    for (std::size_t i = 0; i < per_wave; ++i) {
      zmq::socket_t s(zctx_, zmq::socket_type::dealer);
      s.set(zmq::sockopt::linger, 0);
      s.set(zmq::sockopt::routing_id, "fake-" + std::to_string(wave) + "-" + std::to_string(i));
      s.connect(endpoint_);
      send_frames(s, {"", "MDPW01", "\x01", "svc-" + std::to_string(service(rng_))});
      fakes.push_back(std::move(s));
    }
    readies += static_cast<long long>(per_wave);
    // A client asks for many services no worker has: none of them may take a worker's room.
    auto asker = make_socket(zctx_, zmq::socket_type::dealer, endpoint_);
    for (int i = 0; i < 200; ++i) spray(asker, {"", "MDPC01", "ghost-" + std::to_string(i), "x"});

    const auto stats = stats_until(zctx_, endpoint_, [readies](std::string_view s) {
      return number(s, "workers_registered") + number(s, "workers_refused") >= readies;
    });
    ASSERT_GE(number(stats, "workers_registered") + number(stats, "workers_refused"), readies) << stats;
    most_workers = std::max(most_workers, number(stats, "workers"));
    most_services = std::max(most_services, services_in(stats));
    EXPECT_LE(number(stats, "workers"), max_workers);
    EXPECT_LE(services_in(stats), static_cast<std::size_t>(max_services));
    if (wave == 0) report("during", measure(broker_->pid()));
  }
  std::cout << "[ stats    ] most workers " << most_workers << ", most services " << most_services << std::endl;
  const auto stats = broker_stats(zctx_, endpoint_);
  EXPECT_GT(number(stats, "workers_refused"), 0) << stats;
  EXPECT_GT(number(stats, "rejected"), 0) << stats;

  // The fakes never heartbeat: they expire, and the real worker is served again. What stays is
  // what libzmq allocated for `per_wave` connections at once (measured: about 20 MiB for 256,
  // the same after 6 waves or 48), kept by the allocator once they close: under 128 KiB each.
  const figures f = after("after");
  EXPECT_LE(f.rss_kib, baseline_.rss_kib + static_cast<long>(per_wave) * 128) << "baseline " << describe(baseline_);
  stop();
}

TEST_F(HostileBrokerTest, ClientsThatNeverReadTheirRepliesStayWithinTheByteBudgets) {
  constexpr long long peer_bytes = 1 << 20;
  constexpr long long total_bytes = 4 << 20;
  start({"--max-peer-bytes", std::to_string(peer_bytes), "--max-total-bytes", std::to_string(total_bytes),
         "--max-queue", "100000", "--max-queued-total", "100000"});

  // Clients post 16 KiB requests to the echo worker and never read; their sockets take one
  // message at a time and a small kernel buffer, so once the kernel's buffers are full the
  // replies pile up in the broker. They post in batches that fit their budget, each batch once
  // the broker has judged the last (accepted or refused) and the worker has answered it. First
  // one client alone, held to the budget of one connection; then eight, held to the total.
  const std::string body(16 * 1024, 'r');
  std::vector<zmq::socket_t> sinks;
  long long sent = 1;  // the warm-up
  figures peak = measure(broker_->pid());
  std::string stats;
  for (const auto& [clients, limit] : {std::pair{std::size_t{1}, peer_bytes}, std::pair{std::size_t{8}, total_bytes}}) {
    while (sinks.size() < clients) {
      zmq::socket_t s(zctx_, zmq::socket_type::dealer);
      s.set(zmq::sockopt::linger, 0);
      s.set(zmq::sockopt::rcvhwm, 1);
      s.set(zmq::sockopt::rcvbuf, 4096);
      s.connect(endpoint_);
      sinks.push_back(std::move(s));
    }
    long long most_outbound = 0;
    long long most_held = 0;
    const auto rejected_before = number(stats, "over_budget");
    for (std::size_t batch = 0; batch < rounds(24); ++batch) {
      for (auto& s : sinks)
        for (int n = 0; n < 32; ++n)
          if (s.send(zmq::buffer(std::string_view("")), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
            s.send(zmq::buffer(std::string_view("MDPC01")), zmq::send_flags::sndmore);
            s.send(zmq::buffer(std::string_view("echo")), zmq::send_flags::sndmore);
            s.send(zmq::buffer(body), zmq::send_flags::none);
            ++sent;
          }
      stats = stats_until(zctx_, endpoint_, [&](std::string_view st) {
        most_outbound = std::max(most_outbound, number(st, "outbound_bytes"));
        most_held = std::max(most_held, number(st, "outbound_bytes") + number(st, "queued_bytes") +
                                            number(st, "in_flight_bytes"));
        const figures now = measure(broker_->pid());
        if (now.rss_kib > peak.rss_kib) peak = now;
        return number(st, "requests") + number(st, "rejected") >= sent && number(st, "queued") == 0 &&
               number(st, "in_flight") == 0;
      });
      ASSERT_GE(number(stats, "requests") + number(stats, "rejected"), sent) << stats;
    }
    std::cout << "[ stats    ] " << clients << " client(s), sent " << sent << " in all: "
              << stats.substr(0, stats.find(",\"services\"")) << std::endl;
    std::cout << "[ stats    ] most outbound bytes " << most_outbound << ", most held " << most_held << " (limit "
              << limit << ")" << std::endl;
    EXPECT_GT(number(stats, "over_budget"), rejected_before) << stats;
    EXPECT_GT(most_outbound, 0);
    EXPECT_LE(most_held, limit);
  }
  report("peak", peak);
  // The broker is still serving while they stall.
  EXPECT_TRUE(round_trip("while stalled"));
  const figures during = measure(broker_->pid());
  report("stalled", during);
  // What it holds is the budget (4 MiB) and what libzmq holds beside it, under a ceiling of
  // four times the budget plus a fixed allowance.
  EXPECT_LE(peak.rss_kib, baseline_.rss_kib + 4 * total_bytes / 1024 + 16 * 1024) << "baseline " << describe(baseline_);

  sinks.clear();
  const auto drained = stats_until(zctx_, endpoint_, [](std::string_view s) { return number(s, "outbound_bytes") == 0; });
  EXPECT_EQ(number(drained, "outbound_bytes"), 0) << drained;
  const figures f = after("after");
  EXPECT_LE(f.rss_kib, baseline_.rss_kib + 4 * total_bytes / 1024 + 16 * 1024) << "baseline " << describe(baseline_);
  stop();
}

TEST_F(HostileBrokerTest, WorkersThatNeverAnswerHoldNoMoreThanTheirCreditAndForgedRepliesAreRefused) {
  constexpr std::size_t credit = 4;
  start({"--max-worker-credit", std::to_string(credit), "--request-expiry", "1s"});
  // Eight workers of the echo service announce the largest credit the grammar allows, heartbeat,
  // take requests and sit on them.
  constexpr std::size_t fakes = 8;
  std::vector<zmq::socket_t> workers;
  for (std::size_t i = 0; i < fakes; ++i) {
    workers.push_back(make_socket(zctx_, zmq::socket_type::dealer, endpoint_));
    send_frames(workers.back(), {"", "MDPW01", "\x01", "echo", "99999999999999999999"});
  }
  ASSERT_FALSE(stats_until(zctx_, endpoint_, [](std::string_view st) {
                 return number(st, "workers") == static_cast<long long>(fakes) + 1;
               }).empty());
  auto client = make_socket(zctx_, zmq::socket_type::dealer, endpoint_);
  constexpr std::size_t requests = 200;
  for (std::size_t i = 0; i < requests; ++i) send_frames(client, {"", "MDPC01", "echo", "r" + std::to_string(i)});

  // Until every request has been answered by the real worker or taken by a fake one.
  std::vector<std::vector<std::string>> held(fakes);  // the addresses each fake was given
  std::size_t replies = 0;
  std::size_t taken = 0;
  auto heartbeat_due = clock_type::now();
  // The silent workers heartbeat whenever this is called (each look at the broker's counters).
  const auto keep_alive = [&] {
    if (clock_type::now() < heartbeat_due) return;
    for (auto& w : workers) {
      drain(w);
      send_frames(w, {"", "MDPW01", "\x04"});
    }
    heartbeat_due = clock_type::now() + 100ms;
  };
  const auto deadline = clock_type::now() + bound;
  std::vector<zmq::pollitem_t> items;
  for (auto& w : workers) items.push_back({w.handle(), 0, ZMQ_POLLIN, 0});
  items.push_back({client.handle(), 0, ZMQ_POLLIN, 0});
  while (replies + taken < requests && clock_type::now() < deadline) {
    zmq::poll(items.data(), items.size(), 50ms);
    for (std::size_t i = 0; i < fakes; ++i)
      while (auto m = recv_frames(workers[i], 0ms))
        if (m->size() == 6 && (*m)[2] == "\x02") {
          held[i].push_back((*m)[3]);
          ++taken;
        }
    while (recv_frames(client, 0ms)) ++replies;
    keep_alive();
  }
  std::cout << "[ stats    ] " << replies << " answered by the real worker, " << taken << " taken by the silent ones"
            << std::endl;
  EXPECT_EQ(replies + taken, requests);
  for (std::size_t i = 0; i < fakes; ++i) EXPECT_LE(held[i].size(), credit) << "worker " << i;
  const auto busy = broker_stats(zctx_, endpoint_);
  EXPECT_LE(number(busy, "in_flight"), static_cast<long long>(fakes * credit + 1)) << busy;

  // Forged replies: to an address never given out (worker 0 is disconnected for it, and what it
  // held goes back to the queue), then for another worker's request from a worker now unknown.
  const auto errors_before = number(busy, "protocol_errors");
  send_frames(workers[0], {"", "MDPW01", "\x03", "forged", "", "x"});
  std::size_t other = 1;
  while (other < fakes && held[other].empty()) ++other;
  if (other < fakes && !held[0].empty() && held[0].front() != held[other].front())
    send_frames(workers[0], {"", "MDPW01", "\x03", held[other].front(), "", "x"});
  const auto refused = stats_until(zctx_, endpoint_, [&](std::string_view st) {
    keep_alive();
    return number(st, "protocol_errors") > errors_before;
  });
  EXPECT_GT(number(refused, "protocol_errors"), errors_before) << refused;
  // What the others hold expires; their answers after that are dropped as late.
  const auto still_held = static_cast<long long>(taken - held[0].size());
  const auto expired = stats_until(zctx_, endpoint_, [&](std::string_view st) {
    keep_alive();
    return number(st, "expired") >= still_held;
  });
  EXPECT_GE(number(expired, "expired"), still_held) << expired;
  EXPECT_EQ(number(expired, "workers_expired"), 0) << expired;
  for (std::size_t i = 1; i < fakes; ++i)
    for (const auto& address : held[i]) send_frames(workers[i], {"", "MDPW01", "\x03", address, "", "late"});
  const auto late = stats_until(zctx_, endpoint_, [&](std::string_view st) {
    keep_alive();
    return number(st, "late_replies") >= still_held;
  });
  EXPECT_GE(number(late, "late_replies"), still_held) << late;
  std::cout << "[ stats    ] " << late.substr(0, late.find(",\"services\"")) << std::endl;
  workers.clear();
  const figures f = after("after");
  EXPECT_LE(f.rss_kib, baseline_.rss_kib + 16 * 1024) << "baseline " << describe(baseline_);
  stop();
}

TEST_F(HostileBrokerTest, ConnectionChurnWithPartialAndGarbageMessagesLeaksNoDescriptors) {
  start({"--max-workers", "32", "--max-services", "16"});
  SCOPED_TRACE("seed " + std::to_string(seed_));
  // The start of a ZMTP 3.0 greeting: signature, then the version.
  const std::string greeting_start{'\xff', 0, 0, 0, 0, 0, 0, 0, 1, '\x7f', 3, 0};
  std::uniform_int_distribution<int> kind(0, 3);
  const std::size_t n = rounds(300);
  for (std::size_t round = 0; round < n; ++round) {
    // A raw TCP connection: nothing, garbage, a partial greeting, or a greeting cut short by
    // garbage; then closed, sometimes with a reset.
    const int fd = tcp_connect(endpoint_);
    ASSERT_GE(fd, 0) << "round " << round;
    std::string bytes;
    switch (kind(rng_)) {
      case 0: break;
      case 1: bytes = random_bytes(rng_, 200); break;
      case 2: bytes = greeting_start.substr(0, 1 + round % greeting_start.size()); break;
      default: bytes = greeting_start + random_bytes(rng_, 100); break;
    }
    if (!bytes.empty()) (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (round % 3 == 0) {
      const linger reset{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    }
    ::close(fd);
    // A libzmq peer: a part of a message, or a whole garbage one, then gone.
    auto dealer = make_socket(zctx_, zmq::socket_type::dealer, endpoint_);
    if (round % 2)
      dealer.send(zmq::buffer(std::string_view("MDPW01")), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    else
      spray(dealer, hostile_message(rng_));
  }
  const figures f = after("after");
  EXPECT_LE(f.rss_kib, baseline_.rss_kib + 16 * 1024) << "baseline " << describe(baseline_);
  stop();
}

TEST_F(HostileBrokerTest, SilentConnectionsBeyondItsDescriptorLimitDoNotStopTheBroker) {
  start({});
  // The broker may open only a few descriptors more than it holds; the attacker opens more
  // connections than that and never says a word on them.
  constexpr long room = 32;
  const rlimit limit{static_cast<rlim_t>(baseline_.fds + room), static_cast<rlim_t>(baseline_.fds + room)};
  ASSERT_EQ(::prlimit(broker_->pid(), RLIMIT_NOFILE, &limit, nullptr), 0) << std::strerror(errno);
  std::vector<int> silent;
  for (long i = 0; i < 2 * room; ++i) {
    const int fd = tcp_connect(endpoint_);  // the kernel completes it even when the broker cannot accept
    if (fd >= 0) silent.push_back(fd);
  }
  // A question while the descriptors are spent: the broker cannot accept its connection; what
  // it spends meanwhile is measured over that wait.
  const long cpu_before = cpu_ticks(broker_->pid());
  const auto start_wait = clock_type::now();
  {
    auto req = make_socket(zctx_, zmq::socket_type::req, endpoint_);
    send_frames(req, {"MDPC01", "mmi.service", "echo"});
    const bool answered = recv_frames(req, 1000ms).has_value();
    std::cout << "[ stats    ] a question while exhausted was " << (answered ? "" : "not ") << "answered" << std::endl;
  }
  const double waited = std::chrono::duration<double>(clock_type::now() - start_wait).count();
  const double cpu = static_cast<double>(cpu_ticks(broker_->pid()) - cpu_before) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  const figures full = measure(broker_->pid());
  report("exhausted", full);
  std::cout << "[ stats    ] broker CPU while exhausted: " << cpu << " s in " << waited << " s" << std::endl;
  RecordProperty("exhausted_cpu_seconds", std::to_string(cpu));
  EXPECT_TRUE(alive(broker_->pid())) << broker_->err;
  for (const int fd : silent) ::close(fd);
  const figures f = after("after");
  EXPECT_LE(f.rss_kib, baseline_.rss_kib + 16 * 1024) << "baseline " << describe(baseline_);
  stop();
}

TEST_F(HostileBrokerTest, AnUnendingMultipartMessageIsHeldOnlyWhileItsConnectionLasts) {
  constexpr long long total_bytes = 4 << 20;
  start({"--max-peer-bytes", "1048576", "--max-total-bytes", std::to_string(total_bytes)});
  // Frames of 64 KiB, each under the broker's frame limit, all saying "more follows", and the
  // last never sent. libzmq bounds the size of a frame, not of a message, and hands a message
  // to the broker only once it is whole: until then it holds every frame, out of the broker's
  // reach and outside its byte budget. What this test can hold the daemon to: it serves others
  // meanwhile, gives the memory back to its allocator when the connection goes (a second such
  // message costs no more), and keeps no descriptor.
  const std::size_t mib = 32 * rounds(1);
  const std::string frame = zmtp_frame(std::string(64 * 1024, 'm'), true);
  figures first_peak;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int fd = zmtp_connect(endpoint_);
    ASSERT_GE(fd, 0);
    std::size_t written = 0;
    while (written < mib * 16 && write_all(fd, frame)) ++written;
    EXPECT_EQ(written, mib * 16) << std::strerror(errno);
    EXPECT_TRUE(round_trip("during " + std::to_string(attempt)));
    const figures during = measure(broker_->pid());
    report("unended_" + std::to_string(attempt), during);
    std::cout << "[ stats    ] one unended message of " << written / 16 << " MiB: the broker grew by "
              << (during.rss_kib - baseline_.rss_kib) / 1024 << " MiB beside --max-total-bytes of "
              << total_bytes / (1 << 20) << " MiB" << std::endl;
    if (attempt == 0) first_peak = during;
    else EXPECT_LE(during.rss_kib, first_peak.rss_kib + 8 * 1024) << "the first message's memory was not given back";
    ::close(fd);
    (void)after("after_" + std::to_string(attempt));
  }
  stop();
}

// Titanic behind a broker, both as child processes.
class HostileTitanicTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (titanic_path.empty()) GTEST_SKIP() << "the tools are not built";
    seed_ = seed();
    RecordProperty("seed", std::to_string(seed_));
    rng_.seed(seed_);
  }

  // Starts the broker with the byte budgets `peer_bytes` and `total_bytes`, Titanic behind it and
  // an echo service, and reads both daemons' baselines once a 9/TSP round trip has gone through.
  void start(long long peer_bytes = 1 << 20, long long total_bytes = 8 << 20) {
    total_bytes_ = total_bytes;
    broker_.emplace(broker_path, std::vector<std::string>{"--bind", "tcp://127.0.0.1:*", "--heartbeat", "100ms",
                                                           "--log-level", "error", "--max-peer-bytes",
                                                           std::to_string(peer_bytes), "--max-total-bytes",
                                                           std::to_string(total_bytes)});
    endpoint_ = broker_->endpoint();
    ASSERT_FALSE(endpoint_.empty()) << broker_->err;
    titanic_.emplace(titanic_path,
                     std::vector<std::string>{"--broker", endpoint_, "--journal", (dir_.path() / "titanic").string(),
                                              "--heartbeat", "100ms", "--durability", "none", "--retry-base", "20ms",
                                              "--retry-max", "200ms", "--max-request-bytes", "65536",
                                              "--log-level", "error"});
    ASSERT_TRUE(titanic_->read_until("serving\n", bound)) << titanic_->err;
    for (const char* service : {"titanic.request", "titanic.reply", "titanic.close", "titanic.keyed-request"})
      ASSERT_TRUE(await_service(service)) << service;
    worker_.emplace(fctx_, endpoint_, "echo", done);
    ASSERT_TRUE(titanic_round_trip("warm-up"));
    baseline_ = measure(titanic_->pid());
    broker_baseline_ = measure(broker_->pid());
    report("titanic_baseline", baseline_);
    report("broker_baseline", broker_baseline_);
  }

  void TearDown() override {
    worker_.reset();
    if (titanic_) {
      titanic_->signal(SIGTERM);
      EXPECT_EQ(titanic_->finish(), 0) << titanic_->err;
    }
    if (broker_) {
      broker_->signal(SIGTERM);
      EXPECT_EQ(broker_->finish(), 0) << broker_->err;
    }
  }

  bool await_service(const std::string& service) {
    const auto deadline = clock_type::now() + bound;
    while (clock_type::now() < deadline) {
      const auto answer = mdp_call(zctx_, endpoint_, "mmi.service", {service});
      if (answer && answer->front() == "200") return true;
    }
    return false;
  }

  // A well-behaved 9/TSP post, reply and close.
  bool titanic_round_trip(const std::string& body) {
    namespace tsp = fabric::titanic;
    tsp::client c(fctx_, {.broker = endpoint_, .keys = tsp::key_mode::keyed, .correlate = true});
    auto id = c.post("echo", fabric::make_message(body));
    if (!id) {
      ADD_FAILURE() << "post: " << id.error().message();
      return false;
    }
    auto r = c.wait(*id, bound);
    if (!r || r->state != tsp::reply_state::ready || r->body.empty() || r->body.view(0) != "done:" + body) {
      ADD_FAILURE() << "no reply to " << body;
      return false;
    }
    return static_cast<bool>(c.close(*id));
  }

  // One request to a Titanic service from a raw DEALER, and the status frame of its answer
  // ("" when none came).
  std::string ask(zmq::socket_t& dealer, const std::string& service, const raw_frames& body) {
    drain(dealer);
    send_frames(dealer, fabric::testing::join({"", "MDPC01", service}, body));
    const auto reply = recv_frames(dealer, bound);
    return reply && reply->size() >= 4 ? (*reply)[3] : std::string();
  }

  // After an attack: both daemons up, a well-behaved round trip, descriptors back to baseline.
  // Titanic's anonymous memory may grow by `titanic_allowance_kib` (its caches, what it holds in
  // flight), the broker's resident memory by four times its byte budget and 16 MiB.
  void after(const std::string& name, long open_connections = 0, long titanic_allowance_kib = 32 * 1024) {
    EXPECT_TRUE(alive(broker_->pid())) << broker_->err;
    EXPECT_TRUE(alive(titanic_->pid())) << titanic_->err;
    EXPECT_TRUE(titanic_round_trip("after " + name)) << "seed " << seed_;
    const figures t = fds_settle(zctx_, endpoint_, titanic_->pid(), baseline_.fds + fd_margin);
    const long broker_limit = broker_baseline_.fds + fd_margin + open_connections;
    const figures b = fds_settle(zctx_, endpoint_, broker_->pid(), broker_limit);
    report("titanic_" + name, t);
    report("broker_" + name, b);
    EXPECT_LE(t.fds, baseline_.fds + fd_margin) << "baseline " << describe(baseline_);
    EXPECT_LE(b.fds, broker_limit) << "baseline " << describe(broker_baseline_);
    // Anonymous memory, not the resident total: the journal's mapped pages count only in the latter.
    EXPECT_LE(t.anon_kib, baseline_.anon_kib + titanic_allowance_kib) << "baseline " << describe(baseline_);
    EXPECT_LE(b.rss_kib, broker_baseline_.rss_kib + 4 * total_bytes_ / 1024 + 16 * 1024)
        << "baseline " << describe(broker_baseline_);
  }

  std::uint64_t seed_ = 0;
  std::mt19937_64 rng_;
  temp_dir dir_;
  zmq::context_t zctx_;
  fabric::context fctx_;
  std::optional<daemon_process> broker_;
  std::string endpoint_;
  std::optional<daemon_process> titanic_;
  std::optional<echo_worker> worker_;
  figures baseline_;
  figures broker_baseline_;
  long long total_bytes_ = 0;
};

TEST_F(HostileTitanicTest, GarbageBodiesAndHugeUuidListsAreRefusedAndTitanicKeepsServing) {
  start();
  SCOPED_TRACE("seed " + std::to_string(seed_));
  auto dealer = make_socket(zctx_, zmq::socket_type::dealer, endpoint_);
  const std::string uuid(32, 'A');
  raw_frames uuids;
  for (int i = 0; i < 250; ++i) uuids.push_back(uuid);

  // Bodies that break the grammar are answered 400, and nothing is stored.
  struct refused_case {
    std::string service;
    raw_frames body;
  };
  const std::vector<refused_case> refused{
      {"titanic.request", {""}},                                // empty service name
      {"titanic.request", {"echo"}},                            // no body frame
      {"titanic.request", {std::string(300, 's'), "x"}},        // service name too long
      {"titanic.request", {"echo", std::string(100'000, 'x')}}, // above --max-request-bytes
      {"titanic.keyed-request", {""}},                          // no service after the key
      {"titanic.keyed-request", {"", "echo", "x"}},             // empty key
      {"titanic.reply", {"not a uuid"}},
      {"titanic.reply", {uuid + "0"}},                          // 33 characters
      {"titanic.reply", {std::string(31, 'F') + "G"}},          // not hexadecimal
      {"titanic.reply", {""}},
      {"titanic.reply", uuids},                                 // a list of UUIDs, not one
      {"titanic.reply", {uuid}},                                // never issued
  };
  for (const auto& c : refused) {
    const auto status = ask(dealer, c.service, c.body);
    EXPECT_EQ(status.substr(0, 3), "400") << c.service << " with " << c.body.size() << " frames: '" << status << "'";
  }
  // titanic.close answers 200 to a UUID it does not know, and refuses what is no UUID at all.
  EXPECT_EQ(ask(dealer, "titanic.close", {uuid}).substr(0, 3), "200");
  EXPECT_EQ(ask(dealer, "titanic.close", uuids).substr(0, 3), "400");
  // More frames than a message may hold never reach Titanic: the broker drops them.
  {
    raw_frames many(5000, uuid);
    send_frames(dealer, fabric::testing::join({"", "MDPC01", "titanic.close"}, many));
    send_frames(dealer, fabric::testing::join({"", "MDPC01", "titanic.request", "echo"}, many));
  }

  // Then random bodies to every Titanic service, answers read now and then and never checked.
  const std::string services[] = {"titanic.request", "titanic.reply", "titanic.close", "titanic.keyed-request"};
  std::uniform_int_distribution<std::size_t> pick(0, std::size(services) - 1);
  std::uniform_int_distribution<std::size_t> frames(1, 12);
  std::uniform_int_distribution<int> coin(0, 3);
  const std::size_t messages = rounds(1500);
  for (std::size_t n = 0; n < messages; ++n) {
    raw_frames m{"", "MDPC01", services[pick(rng_)]};
    const std::size_t count = frames(rng_);
    for (std::size_t i = 0; i < count; ++i)
      m.push_back(coin(rng_) == 0 ? uuid.substr(0, 1 + static_cast<std::size_t>(coin(rng_)) * 10) : random_bytes(rng_, 48));
    spray(dealer, m);
    if (n % 32 == 0) drain(dealer);
  }
  // A question on a new connection is still answered.
  auto fresh = make_socket(zctx_, zmq::socket_type::dealer, endpoint_);
  EXPECT_EQ(ask(fresh, "titanic.close", {uuid}).substr(0, 3), "200");
  after("after");
}

TEST_F(HostileTitanicTest, PostsFromClientsThatNeverReadStayBounded) {
  start();
  // Four clients post valid requests and never read the answers: their UUIDs pile up in the
  // broker (bounded by its byte budgets) and Titanic stores and runs what reaches it.
  std::vector<zmq::socket_t> posters;
  const std::string body(1024, 'p');
  long long sent = 0;
  for (int i = 0; i < 4; ++i) {
    zmq::socket_t s(zctx_, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::rcvhwm, 1);
    s.set(zmq::sockopt::rcvbuf, 4096);
    s.connect(endpoint_);
    for (std::size_t n = 0; n < rounds(300); ++n) {
      const raw_frames m{"", "MDPC01", "titanic.request", "echo", body};
      spray(s, m);
      ++sent;
    }
    posters.push_back(std::move(s));
  }
  // Until the broker has nothing queued nor in flight twice in a row: Titanic has stored and
  // answered what it was given, and the echo worker has run what Titanic dispatched.
  int quiet = 0;
  figures peak = measure(titanic_->pid());
  const auto stats = stats_until(zctx_, endpoint_, [&](std::string_view s) {
    const figures now = measure(titanic_->pid());
    if (now.anon_kib > peak.anon_kib) peak = now;
    quiet = number(s, "queued") == 0 && number(s, "in_flight") == 0 && worker_->requests() > 1 ? quiet + 1 : 0;
    return quiet >= 2;
  });
  std::cout << "[ stats    ] posted " << sent << ", echo ran " << worker_->requests() << ": "
            << stats.substr(0, stats.find(",\"services\"")) << std::endl;
  report("titanic_peak", peak);
  EXPECT_LE(number(stats, "outbound_bytes"), 8 << 20);
  after("stalled", static_cast<long>(posters.size()));
  posters.clear();
  after("after");
}

TEST_F(HostileTitanicTest, AHugeServiceReplyIsStoredOnceAndOthersAreServedMeanwhile) {
  // Budgets that let a 20 MiB reply through the broker: larger than a request Titanic takes
  // (16 MiB), and more than its cache holds alongside what it had.
  start(64 << 20, 256 << 20);
  namespace tsp = fabric::titanic;
  constexpr std::size_t huge = std::size_t{20} << 20;
  echo_worker bloat(fctx_, endpoint_, "bloat", [](fabric::message&&) { return fabric::make_message(std::string(huge, 'z')); });
  tsp::client c(fctx_, {.broker = endpoint_, .keys = tsp::key_mode::keyed, .correlate = true});
  auto big = c.post("bloat", fabric::make_message("make it big"));
  ASSERT_TRUE(big) << big.error().message();
  // Others' requests go on being stored, run and answered meanwhile.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(titanic_round_trip("beside " + std::to_string(i)));
  auto r = c.wait(*big, bound);
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->state, tsp::reply_state::ready);
  ASSERT_EQ(r->body.size(), 1U);
  EXPECT_EQ(r->body.view(0).size(), huge);
  EXPECT_TRUE(c.close(*big));
  EXPECT_EQ(bloat.requests(), 1U) << "the request ran again";
  // Titanic may keep the reply in its cache (64 MiB by default) and the allocator what held
  // copies of it in transit: the ceiling is the cache and two copies.
  after("after", 0, (64 << 10) + 2 * static_cast<long>(huge >> 10));
}

}  // namespace
