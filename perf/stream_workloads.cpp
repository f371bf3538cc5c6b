// The stream workloads: this process publishes, a child fabric-perf subscribes.
#include "stream_workloads.hpp"

#include "child_lines.hpp"
#include "journal_workloads.hpp"

#include <fabric/context.hpp>
#include <fabric/stream.hpp>

#include <zmq.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace fabric::perf::stream_bench {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now().time_since_epoch()).count();
}

std::int64_t ns_of(clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

journal_options journal_settings(durability mode, std::uint64_t records, std::size_t size) {
  journal_options o;
  o.mode = mode;
  o.map_size = journal_bench::map_size_for(size + 16, records * 2);
  o.max_pending = std::size_t{1} << 22;
  return o;
}

std::uint64_t warmup_for(std::uint64_t count) { return std::min<std::uint64_t>(10'000, count / 10 + 1); }

// What the child said when every subscriber was done.
struct child_report {
  std::int64_t start_ns = 0;
  std::int64_t last_ns = 0;
  std::uint64_t replayed = 0;
};

// The subscribers, as a child process of this one, spoken to over its stdin and stdout.
class subscribers_child {
 public:
  subscribers_child(const std::string& impl, const std::string& endpoint, const std::string& replay_endpoint,
                    const spec& s, std::uint64_t total, std::uint64_t warm, bool times)
      : child_(arguments(impl, endpoint, replay_endpoint, s, total, warm, times), "the subscribers", s.timeout) {}

  // Waits for "ready": every subscriber holds the warm-up.
  void wait_ready() { child_.expect("ready"); }

  // Waits for every subscriber to hold the last message.
  child_report wait_done() {
    const std::string line = child_.read_line();
    child_report r;
    long start = 0;
    long last = 0;
    unsigned long replayed = 0;
    if (std::sscanf(line.c_str(), "done %ld %ld %lu", &start, &last, &replayed) != 3)
      throw std::runtime_error("the subscribers said: " + line);
    r.start_ns = start;
    r.last_ns = last;
    r.replayed = replayed;
    return r;
  }

  // Delivery times of subscriber 0 (seq -> steady ns), when asked for with `times`.
  std::vector<std::pair<std::uint64_t, std::int64_t>> delivery_times() {
    std::vector<std::pair<std::uint64_t, std::int64_t>> out;
    unsigned long n = 0;
    if (std::sscanf(child_.read_line().c_str(), "delivered %lu", &n) != 1)
      throw std::runtime_error("the subscribers did not report delivery times");
    out.reserve(n);
    for (unsigned long i = 0; i < n; ++i) {
      unsigned long seq = 0;
      long ns = 0;
      if (std::sscanf(child_.read_line().c_str(), "%lu %ld", &seq, &ns) == 2) out.emplace_back(seq, ns);
    }
    return out;
  }

  // Closes its stdin, which ends it, and reaps it.
  void finish() { child_.finish(); }

 private:
  static std::vector<std::string> arguments(const std::string& impl, const std::string& endpoint,
                                            const std::string& replay_endpoint, const spec& s, std::uint64_t total,
                                            std::uint64_t warm, bool times) {
    std::vector<std::string> words{"stream-subscribers", "--impl", impl, "--endpoint", endpoint,
                                   "--subscribers", std::to_string(s.subscribers), "--total", std::to_string(total),
                                   "--warm", std::to_string(warm), "--timeout-ms", std::to_string(s.timeout.count())};
    if (!replay_endpoint.empty()) {
      words.emplace_back("--replay-endpoint");
      words.push_back(replay_endpoint);
    }
    if (times) words.emplace_back("--times");
    return words;
  }

  line_child child_;
};

stream_publisher_options publisher_settings() {
  stream_publisher_options o;
  o.endpoint = "tcp://127.0.0.1:*";
  o.replay_endpoint = "tcp://127.0.0.1:*";
  return o;
}

// Publishes `count` messages, `s.batch` per call, at most `s.window` not yet durable; calls
// `before(i)` ahead of each (i from 1) to pace it or note its time. Returns once all are durable.
template <class Before>
void publish_all(stream_publisher& pub, const spec& s, std::uint64_t count, Before before) {
  const std::string payload(s.size, 'x');
  std::atomic<std::uint64_t> outstanding{0};
  std::atomic<bool> failed{false};
  const auto settle = [&outstanding, &failed](std::uint64_t n) {
    return [&outstanding, &failed, n](result<std::uint64_t> r) {
      if (!r) failed = true;
      outstanding.fetch_sub(n, std::memory_order_release);
    };
  };
  const std::vector<std::string_view> bodies(std::max<std::size_t>(1, s.batch), payload);
  for (std::uint64_t i = 1; i <= count;) {
    const std::uint64_t n = std::min<std::uint64_t>(bodies.size(), count - i + 1);
    while (outstanding.load(std::memory_order_acquire) + n > s.window) std::this_thread::yield();
    for (std::uint64_t k = 0; k < n; ++k) before(i + k);
    outstanding.fetch_add(n, std::memory_order_relaxed);
    if (s.batch <= 1) pub.publish_async(stream_name, payload, settle(1));
    else pub.publish_batch(stream_name, std::span<const std::string_view>(bodies.data(), n), settle(n));
    i += n;
  }
  while (outstanding.load(std::memory_order_acquire) > 0) std::this_thread::yield();
  if (failed) throw std::runtime_error("a publish failed");
}

}  // namespace

outcome fanout(const std::filesystem::path& dir, const spec& s) {
  const std::uint64_t warm = warmup_for(s.count);
  context ctx;
  journal j = journal::open(dir / "pub", journal_settings(s.mode, warm + s.count, s.size));
  stream_publisher pub(ctx, j, publisher_settings());
  subscribers_child child("fabric", pub.endpoint(), pub.replay_endpoint(), s, warm + s.count, warm, false);
  publish_all(pub, s, warm, [](std::uint64_t) {});
  child.wait_ready();
  const std::int64_t t0 = now_ns();
  publish_all(pub, s, s.count, [](std::uint64_t) {});
  const child_report r = child.wait_done();
  child.finish();
  outcome out;
  out.seconds = static_cast<double>(r.last_ns - t0) / 1e9;
  out.messages = s.count;
  out.replayed = r.replayed;
  return out;
}

outcome raw_fanout(const spec& s) {
  if (s.size < 8) throw std::invalid_argument("raw fan-out needs messages of 8 bytes or more");
  const std::uint64_t warm = warmup_for(s.count);
  const int ms = static_cast<int>(s.timeout.count());
  zmq::context_t zctx(1);
  zmq::socket_t pub(zctx, zmq::socket_type::xpub);
  pub.set(zmq::sockopt::xpub_verbose, 1);  // every subscription, not only the first per topic
  pub.set(zmq::sockopt::xpub_nodrop, 1);
  pub.set(zmq::sockopt::sndhwm, 100'000);  // as fabric's publisher
  pub.set(zmq::sockopt::linger, 0);
  pub.set(zmq::sockopt::sndtimeo, ms);
  pub.set(zmq::sockopt::rcvtimeo, ms);
  pub.bind("tcp://127.0.0.1:*");
  subscribers_child child("raw", pub.get(zmq::sockopt::last_endpoint), "", s, warm + s.count, warm, false);
  for (int i = 0; i < s.subscribers; ++i) {
    zmq::message_t sub;
    if (!pub.recv(sub) || sub.size() == 0 || sub.data<unsigned char>()[0] != 1)
      throw std::runtime_error("raw fan-out: not every subscriber subscribed in time");
  }
  std::uint64_t seq = 0;
  const auto send = [&](std::uint64_t n) {
    for (std::uint64_t k = 0; k < n; ++k) {
      zmq::message_t m(s.size);
      ++seq;
      std::memcpy(m.data(), &seq, sizeof seq);
      if (!pub.send(m, zmq::send_flags::none)) throw std::runtime_error("raw fan-out: a subscriber stopped taking");
    }
  };
  send(warm);
  child.wait_ready();
  const std::int64_t t0 = now_ns();
  send(s.count);
  const child_report r = child.wait_done();
  child.finish();
  outcome out;
  out.seconds = static_cast<double>(r.last_ns - t0) / 1e9;
  out.messages = s.count;
  return out;
}

outcome catchup(const std::filesystem::path& dir, const spec& s, std::size_t& map_size) {
  const journal_options jo = journal_settings(s.mode, s.count, s.size);
  map_size = jo.map_size;
  context ctx;
  journal j = journal::open(dir / "pub", jo);
  stream_publisher pub(ctx, j, publisher_settings());
  publish_all(pub, s, s.count, [](std::uint64_t) {});
  spec one = s;
  one.subscribers = 1;
  subscribers_child child("fabric", pub.endpoint(), pub.replay_endpoint(), one, s.count, 0, false);
  const child_report r = child.wait_done();
  child.finish();
  outcome out;
  out.seconds = static_cast<double>(r.last_ns - r.start_ns) / 1e9;
  out.messages = s.count;
  out.replayed = r.replayed;
  return out;
}

outcome raw_catchup(const std::filesystem::path& dir, std::size_t map_size, std::uint64_t count) {
  const auto r = journal_bench::raw_replay(dir / "pub", map_size, count,
                                           stream_publisher::journal_stream(stream_name));
  outcome out;
  out.seconds = r.seconds;
  out.messages = r.records;
  return out;
}

outcome latency(const std::filesystem::path& dir, const spec& s) {
  const std::uint64_t warm = std::min<std::uint64_t>(1'000, s.count / 10 + 1);
  context ctx;
  journal j = journal::open(dir / "pub", journal_settings(s.mode, warm + s.count, s.size));
  stream_publisher pub(ctx, j, publisher_settings());
  spec one = s;
  one.subscribers = 1;
  subscribers_child child("fabric", pub.endpoint(), pub.replay_endpoint(), one, warm + s.count, warm, true);
  publish_all(pub, s, warm, [](std::uint64_t) {});
  child.wait_ready();
  std::vector<std::int64_t> scheduled(warm + s.count + 1, 0);
  spec paced = s;
  paced.batch = 1;
  const auto t0 = clock::now();
  const auto gap = std::chrono::duration<double>(1.0 / s.rate);
  publish_all(pub, paced, s.count, [&](std::uint64_t i) {
    const auto at = t0 + std::chrono::duration_cast<clock::duration>(gap * static_cast<double>(i - 1));
    while (clock::now() < at) {
    }
    scheduled[warm + i] = ns_of(at);
  });
  const child_report r = child.wait_done();
  outcome out;
  for (const auto& [seq, ns] : child.delivery_times()) {
    if (seq < scheduled.size() && scheduled[seq] != 0 && ns >= scheduled[seq])
      out.latency.record(static_cast<std::uint64_t>(ns - scheduled[seq]));
  }
  child.finish();
  out.seconds = static_cast<double>(r.last_ns - ns_of(t0)) / 1e9;
  out.messages = s.count;
  out.replayed = r.replayed;
  return out;
}

// ---- the child -------------------------------------------------------------------------------

namespace {

// What every subscriber of the child reports to its main thread.
class tally {
 public:
  void reached_warm() {
    std::lock_guard lock(mu_);
    ++ready_;
    cv_.notify_all();
  }
  void finished(std::int64_t at) {
    std::lock_guard lock(mu_);
    ++done_;
    last_ns_ = std::max(last_ns_, at);
    cv_.notify_all();
  }
  void fail(std::string why) {
    std::lock_guard lock(mu_);
    if (error_.empty()) error_ = std::move(why);
    cv_.notify_all();
  }
  void input_closed() {
    std::lock_guard lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }
  // Waits until `n` subscribers are ready (or done), a failure, the parent leaving, or the
  // deadline; returns the failure, empty when they are.
  std::string wait(bool for_done, int n, clock::time_point deadline) {
    std::unique_lock lock(mu_);
    const bool ok = cv_.wait_until(lock, deadline, [&] {
      return (for_done ? done_ : ready_) >= n || !error_.empty() || closed_;
    });
    if (!error_.empty()) return error_;
    if (closed_) return "the benchmark went away";
    if (!ok) {
      return std::string("timed out: ") + std::to_string(for_done ? done_ : ready_) + " of " + std::to_string(n) +
             " subscribers " + (for_done ? "done" : "warmed up");
    }
    return {};
  }
  std::int64_t last_ns() {
    std::lock_guard lock(mu_);
    return last_ns_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int ready_ = 0;
  int done_ = 0;
  std::int64_t last_ns_ = 0;
  std::string error_;
  bool closed_ = false;
};

// One subscriber's view of the sequences: each must come next, once.
struct checker {
  int index = 0;
  std::uint64_t next = 1;
  std::uint64_t warm = 0;
  std::uint64_t total = 0;
  bool failed = false;
  std::vector<std::int64_t>* times = nullptr;  // by sequence, for subscriber 0 when asked for

  void on(std::uint64_t seq, tally& t) {
    if (failed || seq > total) return;
    if (seq != next) {
      failed = true;
      t.fail("subscriber " + std::to_string(index) + " got sequence " + std::to_string(seq) + " where " +
             std::to_string(next) + " was due");
      return;
    }
    const std::int64_t at = now_ns();
    if (times != nullptr) (*times)[seq] = at;
    ++next;
    if (seq == warm) t.reached_warm();
    if (seq == total) t.finished(at);
  }
};

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

}  // namespace

int subscribers_main(const std::string& impl, const std::string& endpoint, const std::string& replay_endpoint,
                     int subscribers, std::uint64_t total, std::uint64_t warm, bool times,
                     std::chrono::milliseconds timeout) {
  tally t;
  std::thread input([&t] {
    char sink[256];
    while (::read(0, sink, sizeof sink) > 0) {
    }
    t.input_closed();
  });
  int rc = 0;
  try {
    std::vector<std::int64_t> delivered(times ? total + 1 : 0, 0);
    std::vector<checker> checks(static_cast<std::size_t>(subscribers));
    for (int i = 0; i < subscribers; ++i) {
      auto& c = checks[static_cast<std::size_t>(i)];
      c.index = i;
      c.warm = warm;
      c.total = total;
      if (i == 0 && times) c.times = &delivered;
    }
    const std::int64_t start = now_ns();
    std::uint64_t replayed = 0;
    std::string failure;
    if (impl == "fabric") {
      context ctx;
      std::vector<std::unique_ptr<stream_subscriber>> subs;
      for (auto& c : checks) {
        stream_subscriber_options o;
        o.endpoint = endpoint;
        o.replay_endpoint = replay_endpoint;
        o.streams = {std::string(stream_name)};
        o.start = stream_start::from_seq(1);
        o.mode = stream_delivery::at_most_once;
        o.on_message = [&c, &t](const stream_message& m) { c.on(m.seq, t); };
        o.on_notice = [&c, &t](const stream_notice& n) {
          using k = stream_notice::kind;
          if (n.what == k::publisher_lost || n.what == k::publisher_back) return;
          t.fail("subscriber " + std::to_string(c.index) + " was told of a fault (kind " +
                 std::to_string(static_cast<int>(n.what)) + ", " + std::to_string(n.from) + ".." +
                 std::to_string(n.to) + "): " + n.detail);
        };
        subs.push_back(std::make_unique<stream_subscriber>(ctx, o));
      }
      const auto replayed_so_far = [&subs] {
        std::uint64_t n = 0;
        for (auto& sub : subs) {
          for (const auto& st : sub->stats().streams) n += st.replayed;
        }
        return n;
      };
      // What came by replay after the warm-up: the warm-up itself may be fetched by a subscriber
      // that connected after it was published.
      std::uint64_t replayed_in_warm_up = 0;
      if (warm > 0) failure = t.wait(false, subscribers, clock::now() + timeout);
      if (failure.empty() && warm > 0) {
        replayed_in_warm_up = replayed_so_far();
        say("ready");
      }
      if (failure.empty()) failure = t.wait(true, subscribers, clock::now() + timeout);
      if (failure.empty()) replayed = replayed_so_far() - replayed_in_warm_up;
      for (auto& sub : subs) sub->stop();
    } else if (impl == "raw") {
      zmq::context_t zctx(1);
      std::atomic<bool> stop{false};
      std::vector<std::thread> threads;
      for (auto& c : checks) {
        threads.emplace_back([&c, &t, &zctx, &stop, &endpoint, timeout] {
          try {
            zmq::socket_t sub(zctx, zmq::socket_type::sub);
            sub.set(zmq::sockopt::rcvhwm, 100'000);  // as fabric's subscriber
            sub.set(zmq::sockopt::rcvtimeo, 100);    // to notice `stop` while nothing comes
            sub.set(zmq::sockopt::linger, 0);
            sub.set(zmq::sockopt::subscribe, "");
            sub.connect(endpoint);
            auto deadline = clock::now() + timeout;
            while (!stop.load(std::memory_order_relaxed) && !c.failed && c.next <= c.total) {
              zmq::message_t m;
              if (!sub.recv(m)) {
                if (clock::now() > deadline) throw std::runtime_error("nothing came in time");
                continue;
              }
              std::uint64_t seq = 0;
              if (m.size() >= sizeof seq) std::memcpy(&seq, m.data(), sizeof seq);
              c.on(seq, t);
              if (seq == c.warm) deadline = clock::now() + timeout;
            }
          } catch (const std::exception& e) {
            t.fail("raw subscriber " + std::to_string(c.index) + ": " + e.what());
          }
        });
      }
      if (warm > 0) failure = t.wait(false, subscribers, clock::now() + timeout);
      if (failure.empty() && warm > 0) say("ready");
      if (failure.empty()) failure = t.wait(true, subscribers, clock::now() + timeout);
      stop = true;
      for (auto& th : threads) th.join();
    } else {
      failure = "unknown subscriber kind '" + impl + "'";
    }
    if (!failure.empty()) {
      say("error " + failure);
      rc = 1;
    } else {
      say("done " + std::to_string(start) + " " + std::to_string(t.last_ns()) + " " + std::to_string(replayed));
      if (times) {
        std::size_t n = 0;
        for (std::uint64_t seq = warm + 1; seq <= total; ++seq) n += delivered[seq] != 0 ? std::size_t{1} : std::size_t{0};
        std::printf("delivered %zu\n", n);
        for (std::uint64_t seq = warm + 1; seq <= total; ++seq) {
          if (delivered[seq] != 0)
            std::printf("%lu %ld\n", static_cast<unsigned long>(seq), static_cast<long>(delivered[seq]));
        }
        std::fflush(stdout);
      }
    }
  } catch (const std::exception& e) {
    say(std::string("error ") + e.what());
    rc = 1;
  }
  input.join();  // until the benchmark closes our stdin (or goes away)
  return rc;
}

}  // namespace fabric::perf::stream_bench
