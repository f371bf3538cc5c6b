// The reliable-channel workloads: this process sends, a child fabric-perf receives.
#include "reliable_workloads.hpp"

#include "journal_workloads.hpp"

#include <fabric/context.hpp>
#include <fabric/reliable_channel.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace fabric::perf::reliable_bench {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string mode_name(durability m) { return std::string(journal_bench::to_string(m)); }

journal_options journal_settings(durability mode, std::uint64_t records, std::size_t size) {
  journal_options o;
  o.mode = mode;
  o.map_size = journal_bench::map_size_for(size + 16, records * 2);
  o.max_pending = std::size_t{1} << 22;
  return o;
}

// The receiver, as a child process of this one, spoken to over its stdin and stdout.
class receiver_child {
 public:
  receiver_child(const std::filesystem::path& dir, const spec& s, bool times = false) : timeout_(s.timeout) {
    int in[2];
    int out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    std::vector<std::string> words{"/proc/self/exe", "reliable-receiver", "--dir", dir.string(),
                                   "--mode", mode_name(s.mode), "--credit", std::to_string(s.credit),
                                   "--max-batch", std::to_string(s.max_batch)};
    if (times) words.push_back("--times");
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    const int rc = posix_spawn(&pid_, "/proc/self/exe", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    to_child_ = in[1];
    from_child_ = out[0];
    if (rc != 0) {
      pid_ = -1;
      throw std::runtime_error(std::string("cannot start the receiver: ") + std::strerror(rc));
    }
  }

  ~receiver_child() {
    if (to_child_ >= 0) ::close(to_child_);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (from_child_ >= 0) ::close(from_child_);
  }

  // The endpoint the child bound.
  std::string endpoint() {
    const std::string line = read_line();
    if (line.rfind("endpoint ", 0) != 0) throw std::runtime_error("the receiver said: " + line);
    return line.substr(9);
  }

  // Closes its stdin, reads its counts (and delivery times, when asked for: seq -> steady ns)
  // and reaps it. Returns the commits it made.
  std::uint64_t finish(std::vector<std::pair<std::uint64_t, std::int64_t>>* times = nullptr) {
    ::close(to_child_);
    to_child_ = -1;
    const std::string line = read_line();
    std::uint64_t commits = 0;
    std::uint64_t received = 0;
    if (std::sscanf(line.c_str(), "commits %lu received %lu", &commits, &received) != 2)
      throw std::runtime_error("the receiver said: " + line);
    if (times != nullptr) {
      unsigned long n = 0;
      if (std::sscanf(read_line().c_str(), "delivered %lu", &n) != 1)
        throw std::runtime_error("the receiver did not report its delivery times");
      for (unsigned long i = 0; i < n; ++i) {
        unsigned long seq = 0;
        long ns = 0;
        if (std::sscanf(read_line().c_str(), "%lu %ld", &seq, &ns) == 2) times->emplace_back(seq, ns);
      }
    }
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return commits;
  }

 private:
  std::string read_line() {
    const auto deadline = clock::now() + timeout_;
    for (;;) {
      if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - clock::now()).count();
      if (left <= 0) throw std::runtime_error("the receiver did not answer in time");
      pollfd p{from_child_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char chunk[512];
      const ssize_t n = ::read(from_child_, chunk, sizeof chunk);
      if (n <= 0) throw std::runtime_error("the receiver ended early");
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  milliseconds timeout_;
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  std::string buffer_;
};

// A sender in this process, and what it has been told about acknowledgements.
class bench_sender {
 public:
  bench_sender(context& ctx, journal& j, const std::string& endpoint, const spec& s) {
    reliable_sender_options o;
    o.name = "fabric-perf";
    o.receiver = "rx";
    o.endpoint = endpoint;
    o.max_in_flight = s.credit;
    o.max_backlog = std::uint64_t{1} << 40;
    o.send_timeout = s.timeout;
    o.on_acknowledged = [this](std::string_view, std::uint64_t acked) { on_ack(acked); };
    sender_ = std::make_unique<reliable_sender>(ctx, j, o);
  }

  reliable_sender& get() { return *sender_; }

  // Notes that message `seq` counts from `t` (sampled for latency).
  void sample(std::uint64_t seq, clock::time_point t) {
    std::lock_guard lock(mu_);
    samples_.emplace_back(seq, t);
  }

  // Waits until `seq` is acknowledged; returns when it was, or nullopt at the deadline.
  std::optional<clock::time_point> wait_acked(std::uint64_t seq, clock::time_point deadline) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_until(lock, deadline, [&] { return acked_ >= seq; })) return std::nullopt;
    return acked_at_;
  }

  // What the sender says about its channel, for an error message.
  std::string describe() {
    try {
      const auto st = sender_->stats();
      std::string out = "connected=" + std::to_string(st.connected) + " connections=" + std::to_string(st.connections) +
                        " protocol_errors=" + std::to_string(st.protocol_errors);
      for (const auto& c : st.channels) {
        out += " [" + c.stream + " " + c.state + " last=" + std::to_string(c.last) + " acked=" +
               std::to_string(c.acknowledged) + " in_flight=" + std::to_string(c.in_flight) +
               " sent=" + std::to_string(c.sent) + " retransmitted=" + std::to_string(c.retransmitted) + "]";
      }
      return out;
    } catch (const std::exception& e) {
      return e.what();
    }
  }

  histogram take_latency() {
    std::lock_guard lock(mu_);
    histogram taken;
    std::swap(taken, latency_);  // leaves a fresh one for what follows
    return taken;
  }

  ~bench_sender() { sender_.reset(); }

 private:
  void on_ack(std::uint64_t acked) {
    const auto now = clock::now();
    std::lock_guard lock(mu_);
    acked_ = acked;
    acked_at_ = now;
    while (!samples_.empty() && samples_.front().first <= acked) {
      latency_.record(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(now - samples_.front().second).count()));
      samples_.pop_front();
    }
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::uint64_t acked_ = 0;
  clock::time_point acked_at_{};
  std::deque<std::pair<std::uint64_t, clock::time_point>> samples_;
  histogram latency_;
  std::unique_ptr<reliable_sender> sender_;
};

// Sends `count` messages asynchronously, `s.batch` per call, at most `window` not yet durable;
// calls `before(i)` ahead of each message (i from 1) to pace or sample it.
template <class Before>
void send_all(reliable_sender& out, const spec& s, std::uint64_t count, Before before) {
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
    if (s.batch <= 1) out.send_async("bench", payload, settle(1));
    else out.send_batch("bench", std::span<const std::string_view>(bodies.data(), n), settle(n));
    i += n;
  }
  while (outstanding.load(std::memory_order_acquire) > 0) std::this_thread::yield();
  if (failed) throw std::runtime_error("a send failed");
}

// Sends `warm` messages and waits for their acknowledgement: connections, journals and
// allocators are then warm, and what is measured starts behind them.
void warm_up(bench_sender& sender, const spec& s, std::uint64_t warm) {
  send_all(sender.get(), s, warm, [](std::uint64_t) {});
  if (!sender.wait_acked(warm, clock::now() + s.timeout))
    throw std::runtime_error("warm-up not acknowledged: " + sender.describe());
  (void)sender.take_latency();
}

std::uint64_t warmup_for(std::uint64_t count) { return std::min<std::uint64_t>(10'000, count / 10 + 1); }

}  // namespace

outcome throughput(const std::filesystem::path& dir, const spec& s) {
  const std::uint64_t warm = warmup_for(s.count);
  receiver_child child(dir / "rx", s);
  const std::string ep = child.endpoint();
  context ctx;
  outcome out;
  {
    journal j = journal::open(dir / "tx", journal_settings(s.mode, s.count + warm, s.size));
    bench_sender sender(ctx, j, ep, s);
    warm_up(sender, s, warm);
    const auto t0 = clock::now();
    send_all(sender.get(), s, s.count, [&](std::uint64_t i) {
      if (i % 64 == 0) sender.sample(warm + i, clock::now());
    });
    const auto done = sender.wait_acked(warm + s.count, t0 + s.timeout);
    if (!done) throw std::runtime_error("not every message was acknowledged in time: " + sender.describe());
    out.seconds = std::chrono::duration<double>(*done - t0).count();
    out.messages = s.count;
    out.latency = sender.take_latency();
  }
  out.receiver_commits = child.finish();
  return out;
}

outcome open_loop(const std::filesystem::path& dir, const spec& s) {
  const std::uint64_t warm = warmup_for(s.count);
  receiver_child child(dir / "rx", s);
  const std::string ep = child.endpoint();
  context ctx;
  outcome out;
  {
    journal j = journal::open(dir / "tx", journal_settings(s.mode, s.count + warm, s.size));
    bench_sender sender(ctx, j, ep, s);
    warm_up(sender, s, warm);
    const auto t0 = clock::now();
    const auto gap = std::chrono::duration<double>(1.0 / s.rate);
    send_all(sender.get(), s, s.count, [&](std::uint64_t i) {
      const auto at = t0 + std::chrono::duration_cast<clock::duration>(gap * static_cast<double>(i - 1));
      while (clock::now() < at) {
      }
      sender.sample(warm + i, at);
    });
    const auto done = sender.wait_acked(warm + s.count, clock::now() + s.timeout);
    if (!done) throw std::runtime_error("not every message was acknowledged in time");
    out.seconds = std::chrono::duration<double>(*done - t0).count();
    out.messages = s.count;
    out.latency = sender.take_latency();
  }
  out.receiver_commits = child.finish();
  return out;
}

outcome one_at_a_time(const std::filesystem::path& dir, const spec& s) {
  receiver_child child(dir / "rx", s, true);
  const std::string ep = child.endpoint();
  context ctx;
  outcome out;
  std::vector<std::int64_t> sent_at;  // by sequence, steady ns
  {
    journal j = journal::open(dir / "tx", journal_settings(s.mode, s.count + 100, s.size));
    bench_sender sender(ctx, j, ep, s);
    const std::string payload(s.size, 'x');
    const std::uint64_t warm = std::min<std::uint64_t>(50, s.count);
    sent_at.assign(warm + s.count + 1, 0);
    const auto t0 = clock::now();
    for (std::uint64_t i = 1; i <= warm + s.count; ++i) {
      const auto t = clock::now();
      if (i > warm) sender.sample(i, t);
      sent_at[i] = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
      auto sent = sender.get().send("bench", payload);
      if (!sent) throw std::runtime_error("send failed: " + sent.error().message());
      if (!sender.wait_acked(*sent, t + s.timeout)) throw std::runtime_error("a message was not acknowledged in time");
    }
    out.seconds = std::chrono::duration<double>(clock::now() - t0).count();
    out.messages = s.count;
    out.latency = sender.take_latency();
    // Only what was measured: the warm-up's deliveries are left out below.
    for (std::uint64_t i = 1; i <= warm; ++i) sent_at[i] = 0;
  }
  std::vector<std::pair<std::uint64_t, std::int64_t>> times;
  out.receiver_commits = child.finish(&times);
  for (const auto& [seq, ns] : times) {
    if (seq < sent_at.size() && sent_at[seq] != 0 && ns >= sent_at[seq])
      out.delivery.record(static_cast<std::uint64_t>(ns - sent_at[seq]));
  }
  return out;
}

outcome recovery(const std::filesystem::path& dir, const spec& s) {
  context ctx;
  outcome out;
  journal j = journal::open(dir / "tx", journal_settings(s.mode, s.count, s.size));
  {
    // The backlog builds up with no receiver to take it.
    spec fill = s;
    bench_sender lonely(ctx, j, "tcp://127.0.0.1:9", fill);
    send_all(lonely.get(), s, s.count, [](std::uint64_t) {});
  }
  receiver_child child(dir / "rx", s);
  const std::string ep = child.endpoint();
  {
    const auto t0 = clock::now();
    bench_sender sender(ctx, j, ep, s);  // resumes the backlog from the journal
    const auto done = sender.wait_acked(s.count, t0 + s.timeout);
    if (!done) throw std::runtime_error("the backlog was not acknowledged in time");
    out.seconds = std::chrono::duration<double>(*done - t0).count();
    out.messages = s.count;
  }
  out.receiver_commits = child.finish();
  return out;
}

int receiver_main(const std::filesystem::path& dir, durability mode, std::uint32_t credit, std::size_t max_batch,
                  bool times) {
  try {
    journal j = journal::open(dir, journal_settings(mode, 1, 256));
    context ctx;
    std::atomic<std::uint64_t> received{0};
    // Delivery times of the first messages (the handler runs on one thread: no lock needed).
    std::vector<std::int64_t> delivered_at(times ? 100'001 : 0, 0);
    reliable_receiver_options o;
    o.endpoint = "tcp://127.0.0.1:*";
    o.credit = credit;
    o.max_batch = max_batch;
    o.on_message = [&received, &delivered_at](const reliable_delivery& d) {
      received.fetch_add(1, std::memory_order_relaxed);
      if (d.seq < delivered_at.size() && delivered_at[d.seq] == 0)
        delivered_at[d.seq] = std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now().time_since_epoch()).count();
    };
    reliable_receiver in(ctx, j, o);
    std::printf("endpoint %s\n", in.endpoint().c_str());
    std::fflush(stdout);
    char sink[256];
    while (::read(0, sink, sizeof sink) > 0) {
    }
    const auto st = in.stats();
    in.stop();
    std::printf("commits %lu received %lu\n", static_cast<unsigned long>(st.commits),
                static_cast<unsigned long>(received.load()));
    if (times) {
      std::size_t n = 0;
      for (const auto t : delivered_at) n += t != 0 ? 1 : 0;
      std::printf("delivered %zu\n", n);
      for (std::size_t seq = 0; seq < delivered_at.size(); ++seq) {
        if (delivered_at[seq] != 0) std::printf("%zu %ld\n", seq, static_cast<long>(delivered_at[seq]));
      }
    }
    std::fflush(stdout);
    in.stop();
    return 0;
  } catch (const std::exception& e) {
    std::printf("error %s\n", e.what());
    std::fflush(stdout);
    return 1;
  }
}

}  // namespace fabric::perf::reliable_bench
