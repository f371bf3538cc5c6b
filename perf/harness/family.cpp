// The benchmark families fabric-perf knows, and the grouping of a report's runs into families.
// A new family adds its entry to known_families(); without one it still gets a default section.
#include "harness/family.hpp"

#include <algorithm>

namespace fabric::perf {

const std::vector<family>& known_families() {
  static const std::vector<family> all = {
      {.name = "patterns",
       .title = "Patterns: fabric's sockets beside raw libzmq",
       .benches = {"thr", "lat"},
       .baseline = "raw",
       .baseline_title = "raw libzmq",
       .unit = "messages",
       .note = "Every pattern and transport, the same workload written once and run over fabric's "
               "sockets and over raw cppzmq sockets in the same process.",
       .chart_by = {"pattern", "mode"},
       .x_axes = {"size"},
       .example = {{"pattern", "push_pull"}, {"transport", "tcp"}, {"size", "256"}},
       .compare_latency = {}},
      {.name = "journal",
       .title = "Journal: fabric::journal beside raw LMDB",
       .benches = {"journal"},
       .baseline = "raw_lmdb",
       .baseline_title = "raw LMDB",
       .unit = "records",
       .note = "Appends and replays through fabric::journal, and raw LMDB doing the same work at "
               "the batch size the journal reached, on the same disk.",
       .chart_by = {"op"},
       .x_axes = {"producers", "size"},
       .example = {{"op", "append"}, {"mode", "sync"}, {"producers", "4"}},
       .compare_latency = {}},
      {.name = "majordomo",
       .title = "Majordomo: request/reply through the broker beside a raw DEALER/ROUTER echo",
       .benches = {"majordomo"},
       .baseline = "raw",
       .baseline_title = "raw DEALER/ROUTER echo",
       .unit = "requests",
       .note = "Requests through fabric's Majordomo broker to echo workers, and raw cppzmq making "
               "the same hops through a proxy.",
       .chart_by = {"client", "mode"},
       .x_axes = {"workers", "credit", "size"},
       .example = {{"client", "async"}, {"mode", "closed"}, {"workers", "4"}},
       // The asynchronous closed loop keeps a window of requests in flight: its latency is that
       // window divided by the rate, already compared as throughput.
       .compare_latency =
           [](const run& r) {
             return !(r.text("client") == "async" && r.text("mode") == "closed");
           }},
      {.name = "reliable",
       .title = "Reliable channels: end to end between two processes beside raw LMDB",
       .benches = {"reliable"},
       .baseline = "raw_lmdb",
       .baseline_title = "raw LMDB",
       .unit = "messages",
       .note = "A reliable_sender and a reliable_receiver in two processes over tcp on loopback, "
               "durable on both sides; raw LMDB commits the same messages at the batch size the "
               "receiver reached (throughput), or one fsynced commit at a time (latency).",
       .chart_by = {"op", "mode"},
       .x_axes = {"send_batch"},
       .example = {{"op", "thr"}, {"mode", "sync"}, {"send_batch", "64"}},
       // The closed loop keeps a window of messages in flight: its latency is that window's
       // queue. Only one message at a time is compared on latency.
       .compare_latency = [](const run& r) { return r.text("op") == "one"; }},
      {.name = "stream",
       .title = "Streams: durable publish/subscribe beside raw PUB/SUB and raw LMDB",
       .benches = {"stream"},
       .baseline = "raw",
       .baseline_title = "raw PUB/SUB (fan-out), raw LMDB (catch-up)",
       .unit = "messages",
       .note = "A stream_publisher over a journal here, its subscribers in a child process over tcp "
               "on loopback, each getting every sequence in order; fan-out is messages/s per "
               "subscriber beside raw libzmq PUB/SUB to as many, catch-up is a backlog fetched by "
               "replay beside one raw LMDB read of the same records.",
       .chart_by = {"op", "mode"},
       .x_axes = {"subscribers"},
       .example = {{"op", "fanout"}, {"mode", "periodic"}, {"subscribers", "4"}},
       // Only the open loop measures latency, and it has no baseline.
       .compare_latency = {}},
      {.name = "queue",
       .title = "Task queues: the reliable work queue beside a raw PUSH/PULL pipeline",
       .benches = {"queue"},
       .baseline = "raw",
       .baseline_title = "raw PUSH/PULL pipeline",
       .unit = "tasks",
       .note = "A task_producer over a journal here, its task_workers in a child process over tcp "
               "on loopback, each task completed once and recorded in the producer's journal; "
               "beside a raw ventilator PUSH to as many worker PULL/PUSH threads and a sink PULL, "
               "the same window of tasks outstanding.",
       .chart_by = {"op", "mode"},
       .x_axes = {"workers"},
       .example = {{"op", "thr"}, {"mode", "sync"}, {"workers", "4"}},
       // Both sides keep the same window of tasks outstanding, so their latencies are compared.
       .compare_latency = {}},
      {.name = "freelance",
       .title = "Freelance (10/FLP): brokerless request/reply beside raw ROUTER-to-ROUTER round trips",
       .benches = {"freelance"},
       .baseline = "raw",
       .baseline_title = "raw ROUTER-to-ROUTER",
       .unit = "requests",
       .note = "fabric's Freelance clients and servers over 1 and 3 servers, and raw cppzmq ROUTERs making "
               "the same round trips with no pings, retries or bookkeeping.",
       .chart_by = {"client"},
       .x_axes = {"servers"},
       .example = {{"client", "sync"}, {"servers", "3"}},
       // The asynchronous closed loop keeps a window in flight: its latency is that queue.
       .compare_latency = [](const run& r) { return r.text("client") == "sync"; }},
  };
  return all;
}

std::vector<family_runs> group_by_family(const report& r, std::span<const family> families) {
  std::vector<family_runs> out;
  const auto claims = [](const family& f, const std::string& bench) {
    return std::find(f.benches.begin(), f.benches.end(), bench) != f.benches.end();
  };
  for (const run& one : r.runs) {
    const std::string bench = one.text("bench").value_or("?");
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const family_runs& g) { return claims(g.about, bench); });
    if (it == out.end()) {
      const auto known = std::find_if(families.begin(), families.end(),
                                      [&](const family& f) { return claims(f, bench); });
      family f;
      if (known != families.end()) {
        f = *known;
      } else {
        f.name = bench;
        f.title = "Bench \"" + bench + "\"";
        f.benches = {bench};
        f.baseline.clear();  // the first other impl seen, below
      }
      out.push_back({std::move(f), {}});
      it = std::prev(out.end());
    }
    if (it->about.baseline.empty()) {
      const std::string impl = one.text("impl").value_or("");
      if (!impl.empty() && impl != "fabric") it->about.baseline = impl;
    }
    it->runs.push_back(&one);
  }
  return out;
}

}  // namespace fabric::perf
