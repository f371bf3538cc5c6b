// The power-loss harness's journal workload, run under the shim: it appends known records to a
// fresh journal in the durability mode under test (one producer thread per stream, many appends
// in flight, one record at a time or, with --batch, several per append_batch) while another
// thread commits cursor transactions, and reports each completion as a mark through the shim, so
// the log says exactly which appends the journal called durable when.
#include <fabric/journal.hpp>

#include "chaos/powerloss/journal_workload.hpp"

#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <semaphore>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

namespace pl = fabric::testing::powerloss;

using mark_fn = void (*)(const void*, std::size_t);

struct settings {
  std::string dir;
  fabric::durability mode = fabric::durability::sync;
  unsigned streams = 3;
  std::uint64_t records = 150;
  unsigned interval_ms = 5;
  unsigned in_flight = 32;
  unsigned batch = 1;  // records per append; above 1, through append_batch
};

void usage(std::FILE* to) {
  std::fprintf(to,
               "usage: fabric-test-powerloss-journal --dir DIR [--mode sync|periodic|none] [--streams N]\n"
               "           [--records N] [--interval-ms N] [--in-flight N] [--batch N]\n"
               "Appends N known records per stream to a new journal in DIR and reports each completed\n"
               "append (and cursor transaction) as a mark; with --batch, N records per append_batch\n"
               "(--records must be a multiple of it). Run it with LD_PRELOAD set to the power-loss\n"
               "shim and FABRIC_POWERLOSS_LOG set to the event log; see tests/chaos/powerloss/README.md.\n");
}

bool parse(int argc, char** argv, settings& s) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) return false;
    const std::string value = argv[++i];
    const unsigned long number = std::strtoul(value.c_str(), nullptr, 10);
    if (arg == "--dir") s.dir = value;
    else if (arg == "--mode" && value == "sync") s.mode = fabric::durability::sync;
    else if (arg == "--mode" && value == "periodic") s.mode = fabric::durability::periodic;
    else if (arg == "--mode" && value == "none") s.mode = fabric::durability::none;
    else if (arg == "--streams" && number > 0 && number < 100) s.streams = static_cast<unsigned>(number);
    else if (arg == "--records" && number > 0) s.records = number;
    else if (arg == "--interval-ms" && number > 0 && number < 10000) s.interval_ms = static_cast<unsigned>(number);
    else if (arg == "--in-flight" && number > 0 && number < 100000) s.in_flight = static_cast<unsigned>(number);
    else if (arg == "--batch" && number > 0 && number <= 4096) s.batch = static_cast<unsigned>(number);
    else return false;
  }
  return !s.dir.empty() && s.records % s.batch == 0;
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  if (!parse(argc, argv, s)) {
    usage(stderr);
    return 2;
  }
  const auto mark = reinterpret_cast<mark_fn>(::dlsym(RTLD_DEFAULT, "fabric_powerloss_mark"));
  if (mark == nullptr) {
    std::fprintf(stderr, "fabric-test-powerloss-journal: the power-loss shim is not loaded; run with "
                         "LD_PRELOAD=<path to libfabric-test-powerloss-shim.so>\n");
    return 2;
  }
  auto report = [mark](const std::string& m) { mark(m.data(), m.size()); };

  std::mutex failure_mutex;
  std::string failure;
  auto fail = [&](std::string why) {
    std::lock_guard lock(failure_mutex);
    if (failure.empty()) failure = std::move(why);
  };

  try {
    fabric::journal_options options;
    options.mode = s.mode;
    options.sync_interval = std::chrono::milliseconds(s.interval_ms);
    auto j = fabric::journal::open(s.dir, options);
    mark(pl::opened_mark.data(), pl::opened_mark.size());

    std::vector<std::thread> producers;
    for (unsigned index = 0; index < s.streams; ++index) {
      producers.emplace_back([&, index] {
        std::counting_semaphore<> slots(static_cast<std::ptrdiff_t>(s.in_flight));
        const std::string stream = pl::workload_stream(index);
        for (std::uint64_t seq = 1; seq <= s.records; seq += s.batch) {
          slots.acquire();
          std::vector<std::string> payloads;
          std::vector<std::uint64_t> hashes;
          for (std::uint64_t k = 0; k < s.batch; ++k) {
            payloads.push_back(pl::workload_payload(index, seq + k));
            hashes.push_back(pl::payload_hash(payloads.back()));
          }
          // Runs on the writer thread once the journal calls the append (or the batch) durable.
          auto done = [&, index, seq, hashes](fabric::result<std::uint64_t> got) {
            if (!got) fail(stream + " append " + std::to_string(seq) + " failed: " + got.error().message());
            else if (*got != seq) fail(stream + " append " + std::to_string(seq) + " got seq " + std::to_string(*got));
            else
              for (std::uint64_t k = 0; k < hashes.size(); ++k) report(pl::append_mark(index, seq + k, hashes[k]));
            slots.release();
          };
          if (s.batch == 1) {
            j.append(stream, payloads[0], std::move(done));
          } else {
            const std::vector<std::string_view> views(payloads.begin(), payloads.end());
            j.append_batch(stream, views, std::move(done));
          }
        }
        for (unsigned k = 0; k < s.in_flight; ++k) slots.acquire();  // every append completed
      });
    }
    std::thread cursors([&] {
      for (std::uint64_t value = 1; value <= s.records / 10; ++value) {
        for (unsigned index = 0; index < s.streams; ++index) {
          const std::string name = pl::workload_cursor(index);
          auto done = j.transact([&](fabric::journal_txn& txn) { txn.set_cursor(name, value); });
          if (!done) fail("cursor transaction failed: " + done.error().message());
          else report(pl::cursor_mark(index, value));
        }
      }
    });
    for (auto& t : producers) t.join();
    cursors.join();
  } catch (const std::exception& e) {
    fail(std::string("journal: ") + e.what());
  }
  if (!failure.empty()) {
    std::fprintf(stderr, "fabric-test-powerloss-journal: %s\n", failure.c_str());
    return 1;
  }
  std::printf("done: %u streams of %llu records\n", s.streams, static_cast<unsigned long long>(s.records));
  return 0;
}
