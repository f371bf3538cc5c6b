// The power-loss harness's reliable channel workload, run under the shim: a reliable_sender and
// a reliable_receiver in one process, each over a journal of its own (two data.mdb files, told
// apart by the shim), joined over tcp on loopback. Producer threads send known messages (many
// in flight per stream); the receiver takes them in effectively_once mode, its handler writing
// one row per message id in the same transaction as the channel's mark. Each completed send and
// each acknowledgement the sender is told of is reported as a mark through the shim, so the log
// says exactly what each side had promised when.
#include <fabric/journal.hpp>
#include <fabric/reliable_channel.hpp>

#include "chaos/powerloss/channel_workload.hpp"
#include "reliability/frc_faults.hpp"

#include <dlfcn.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <mutex>
#include <optional>
#include <semaphore>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

namespace pl = fabric::testing::powerloss;
namespace ch = fabric::testing::powerloss::channel;
using namespace std::chrono_literals;

using mark_fn = void (*)(const void*, std::size_t);

// How long the workload waits for the receiver to acknowledge everything: far above what a
// healthy run takes, so reaching it means the channel is stuck.
constexpr auto acknowledgement_bound = 60s;

struct settings {
  std::string dir;
  fabric::durability mode = fabric::durability::sync;
  unsigned streams = 2;
  std::uint64_t messages = 150;
  unsigned interval_ms = 5;
  unsigned in_flight = 16;
  std::uint64_t window = 0;  // sent and not acknowledged per stream; 0 = only in_flight bounds it
  bool ack_before_durable = false;
};

void usage(std::FILE* to) {
  std::fprintf(to,
               "usage: fabric-test-powerloss-channel --dir DIR [--mode sync|periodic|none] [--streams N]\n"
               "           [--messages N] [--interval-ms N] [--in-flight N] [--window N] [--ack-before-durable]\n"
               "Sends N known messages per stream from a reliable sender (journal DIR/tx) to a reliable\n"
               "receiver (journal DIR/rx, effectively-once) in this process, and reports each completed\n"
               "send and each acknowledgement as a mark. --window holds a stream's sends until fewer than\n"
               "N are unacknowledged; --ack-before-durable plants a receiver bug (ACK before the mark is\n"
               "durable). Run it with LD_PRELOAD set to the power-loss shim, FABRIC_POWERLOSS_LOG to the\n"
               "event log and FABRIC_POWERLOSS_FILES=data.mdb; see tests/chaos/powerloss/README.md.\n");
}

bool parse(int argc, char** argv, settings& s) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(stdout);
      std::exit(0);
    }
    if (arg == "--ack-before-durable") {
      s.ack_before_durable = true;
      continue;
    }
    if (i + 1 >= argc) return false;
    const std::string value = argv[++i];
    const unsigned long number = std::strtoul(value.c_str(), nullptr, 10);
    if (arg == "--dir") s.dir = value;
    else if (arg == "--mode" && value == "sync") s.mode = fabric::durability::sync;
    else if (arg == "--mode" && value == "periodic") s.mode = fabric::durability::periodic;
    else if (arg == "--mode" && value == "none") s.mode = fabric::durability::none;
    else if (arg == "--streams" && number > 0 && number < 100) s.streams = static_cast<unsigned>(number);
    else if (arg == "--messages" && number > 0) s.messages = number;
    else if (arg == "--interval-ms" && number > 0 && number < 10000) s.interval_ms = static_cast<unsigned>(number);
    else if (arg == "--in-flight" && number > 0 && number < 100000) s.in_flight = static_cast<unsigned>(number);
    else if (arg == "--window" && value.find_first_not_of("0123456789") == std::string::npos) s.window = number;
    else return false;
  }
  return !s.dir.empty();
}

// What the sender has been told the receiver acknowledged, per stream, for the producers and
// the end of the run to wait on.
class acknowledgements {
 public:
  explicit acknowledgements(unsigned streams) : acked_(streams, 0) {}

  void set(unsigned index, std::uint64_t n) {
    std::lock_guard lock(mu_);
    if (n > acked_[index]) acked_[index] = n;
    cv_.notify_all();
  }
  /// Waits until `index` is acknowledged up to `n`, at most until `deadline`.
  bool wait(unsigned index, std::uint64_t n, std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    return cv_.wait_until(lock, deadline, [&] { return acked_[index] >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::uint64_t> acked_;
};

}  // namespace

int main(int argc, char** argv) {
  settings s;
  if (!parse(argc, argv, s)) {
    usage(stderr);
    return 2;
  }
  const auto mark = reinterpret_cast<mark_fn>(::dlsym(RTLD_DEFAULT, "fabric_powerloss_mark"));
  if (mark == nullptr) {
    std::fprintf(stderr, "fabric-test-powerloss-channel: the power-loss shim is not loaded; run with "
                         "LD_PRELOAD=<path to libfabric-test-powerloss-shim.so>\n");
    return 2;
  }
  auto report = [mark](std::string_view m) { mark(m.data(), m.size()); };

  std::mutex failure_mutex;
  std::string failure;
  auto fail = [&](std::string why) {
    std::lock_guard lock(failure_mutex);
    if (failure.empty()) failure = std::move(why);
  };
  auto failed = [&] {
    std::lock_guard lock(failure_mutex);
    return !failure.empty();
  };

  fabric::frc::faults::set_ack_before_durable(s.ack_before_durable);
  try {
    fabric::journal_options options;
    options.mode = s.mode;
    options.sync_interval = std::chrono::milliseconds(s.interval_ms);
    const std::filesystem::path root(s.dir);
    auto tx = fabric::journal::open(root / ch::sender_dir, options);
    auto rx = fabric::journal::open(root / ch::receiver_dir, options);
    report(ch::opened_mark);

    std::vector<std::string> names;
    for (unsigned index = 0; index < s.streams; ++index) names.push_back(ch::stream(index));
    acknowledgements acked(s.streams);
    fabric::context ctx;

    fabric::reliable_receiver_options ro;
    ro.endpoint = "tcp://127.0.0.1:*";
    ro.mode = fabric::delivery_mode::effectively_once;
    // Runs inside the transaction that writes the channel's mark: the row and the tally commit
    // with it, or neither does.
    ro.on_message_in = [](const fabric::reliable_delivery& d, fabric::journal_txn& t) {
      const auto id = ch::id_of(d.body);
      const std::string key = id ? ch::row_key(d.stream, *id) : std::string(d.stream) + "/malformed";
      ch::row r{.times = 1, .seq = d.seq, .hash = pl::payload_hash(d.body)};
      auto before = t.get(ch::rows_table, key);
      if (!before) return;  // the read failed: the transaction does not commit
      if (*before) {
        const auto old = ch::parse_row(**before);
        r.times = old ? old->times + 1 : 0;  // 0: the old row was damaged; the check says so
      }
      t.put(ch::rows_table, key, ch::row_value(r));
      auto tally = t.get(ch::tally_table, d.stream);
      if (!tally) return;
      const std::uint64_t taken = *tally ? std::strtoull((*tally)->c_str(), nullptr, 10) : 0;
      t.put(ch::tally_table, d.stream, std::to_string(taken + 1));
    };
    ro.log = [&fail](fabric::log_level level, std::string_view line) {
      if (level == fabric::log_level::error) fail("receiver: " + std::string(line));
      else if (level == fabric::log_level::warning)
        std::fprintf(stderr, "receiver: %.*s\n", static_cast<int>(line.size()), line.data());
    };
    fabric::reliable_receiver receiver(ctx, rx, ro);

    fabric::reliable_sender_options so;
    so.name = std::string(ch::sender_name);
    so.receiver = std::string(ch::receiver_name);
    so.endpoint = receiver.endpoint();
    so.streams = names;
    so.on_acknowledged = [&](std::string_view stream, std::uint64_t n) {
      report(ch::acked_mark(stream, n));
      for (unsigned index = 0; index < s.streams; ++index)
        if (names[index] == stream) acked.set(index, n);
    };
    so.log = [&fail](fabric::log_level level, std::string_view line) {
      if (level == fabric::log_level::error) fail("sender: " + std::string(line));
      else if (level == fabric::log_level::warning)
        std::fprintf(stderr, "sender: %.*s\n", static_cast<int>(line.size()), line.data());
    };
    fabric::reliable_sender sender(ctx, tx, so);

    const auto deadline = std::chrono::steady_clock::now() + acknowledgement_bound;
    std::vector<std::thread> producers;
    for (unsigned index = 0; index < s.streams; ++index) {
      producers.emplace_back([&, index] {
        std::counting_semaphore<> slots(static_cast<std::ptrdiff_t>(s.in_flight));
        const std::string& stream = names[index];
        for (std::uint64_t id = 1; id <= s.messages; ++id) {
          if (s.window > 0 && id > s.window && !acked.wait(index, id - s.window, deadline)) {
            fail(stream + ": the receiver acknowledged nothing up to " + std::to_string(id - s.window) + " in time");
            break;
          }
          slots.acquire();
          // Runs on the sender journal's writer thread once the message is durable in the outbox.
          sender.send_async(stream, ch::body(index, id), [&, id](fabric::result<std::uint64_t> got) {
            if (!got) fail(stream + " send " + std::to_string(id) + " failed: " + got.error().message());
            else if (*got != id) fail(stream + " send " + std::to_string(id) + " got seq " + std::to_string(*got));
            else report(ch::sent_mark(stream, id));
            slots.release();
          });
        }
        for (unsigned k = 0; k < s.in_flight; ++k) slots.acquire();  // every send completed
      });
    }
    for (auto& t : producers) t.join();
    for (unsigned index = 0; index < s.streams && !failed(); ++index) {
      if (!acked.wait(index, s.messages, deadline))
        fail(names[index] + ": not every message was acknowledged within " +
             std::to_string(acknowledgement_bound.count()) + " s");
    }
  } catch (const std::exception& e) {
    fail(std::string("channel: ") + e.what());
  }
  if (!failure.empty()) {
    std::fprintf(stderr, "fabric-test-powerloss-channel: %s\n", failure.c_str());
    return 1;
  }
  std::printf("done: %u streams of %llu messages\n", s.streams, static_cast<unsigned long long>(s.messages));
  return 0;
}
