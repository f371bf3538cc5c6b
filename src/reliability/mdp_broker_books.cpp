// The Majordomo broker machine's counters and its self-check (see mdp_broker.hpp): apart from
// the machine's message handling so that each file stays about one concern.
#include "reliability/mdp_broker.hpp"
#include "reliability/mdp_broker_state.hpp"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace fabric::mdp {

broker_stats broker_machine::stats() const {
  broker_stats out = counters_;
  out.malformed += sink_.dropped();
  out.workers = workers_.size();
  out.busy_workers = busy_;
  out.in_flight = in_flight_;
  out.in_flight_bytes = in_flight_bytes_;
  out.queued = queued_;
  out.queued_bytes = queued_bytes_;
  out.outbound_bytes = sink_.outbound_bytes();
  out.services.reserve(services_.size());
  for (const auto& [name, s] : services_) {
    service_stats st = s->counters;
    st.workers = s->workers;
    st.idle_workers = s->idle_count;
    st.queued = s->queue.size();
    out.services.push_back(std::move(st));
  }
  std::sort(out.services.begin(), out.services.end(),
            [](const service_stats& a, const service_stats& b) { return a.name < b.name; });
  return out;
}

std::string broker_machine::check_books() const {
  std::vector<std::uint64_t> serials;
  serials.reserve(queued_ + in_flight_);
  std::size_t queued = 0;
  std::size_t queued_bytes = 0;
  std::size_t in_flight = 0;
  std::size_t in_flight_bytes = 0;
  std::size_t busy = 0;
  std::unordered_map<std::string_view, std::size_t> by_client;
  // A request must be whole (a moved-from one has no frames), for the service it sits in, and
  // nowhere else.
  const auto check_request = [&](const pending& p, const service& s) -> std::string {
    if (p.body_at < 4 || p.m.size() < p.body_at) return "a request has lost its frames";
    if (p.service() != s.name)
      return "a request for '" + std::string(p.service()) + "' sits in '" + s.name + "'";
    if (p.serial == 0 || p.serial > last_serial_) return "a request has no serial number";
    serials.push_back(p.serial);
    if (p.bytes != p.m.byte_size()) return "a request has a wrong size";
    by_client[p.client()] += p.bytes;
    return {};
  };
  for (const auto& [name, sp] : services_) {
    const service& s = *sp;
    if (s.name != name) return "service '" + s.name + "' is filed as '" + name + "'";
    for (const pending& p : s.queue) {
      if (auto why = check_request(p, s); !why.empty()) return why + " (queue of '" + s.name + "')";
      ++queued;
      queued_bytes += p.bytes;
    }
    std::size_t idle = 0;
    const worker* prev = nullptr;
    for (const worker* w = s.idle_head; w != nullptr; prev = w, w = w->next) {
      if (++idle > workers_.size()) return "the idle list of '" + s.name + "' loops";
      if (!w->idle || w->svc != &s || w->prev != prev)
        return "the idle list of '" + s.name + "' is broken";
    }
    if (prev != s.idle_tail || idle != s.idle_count)
      return "the idle list of '" + s.name + "' has a wrong tail or count";
  }
  std::size_t unserved = 0;
  const service* before = nullptr;
  for (const service* s = unserved_head_; s != nullptr; before = s, s = s->unserved_next) {
    if (++unserved > services_.size()) return "the list of unserved services loops";
    if (!s->unserved || s->unserved_prev != before || s->workers != 0)
      return "the list of unserved services is broken at '" + s->name + "'";
  }
  if (before != unserved_tail_) return "the list of unserved services has a wrong tail";
  std::size_t unserved_count = 0;
  for (const auto& [name, sp] : services_)
    if (sp->workers == 0) ++unserved_count;
  if (unserved != unserved_count) return "a service with no workers is not in the unserved list";
  std::unordered_map<const service*, std::size_t> members;
  for (const auto& [id, wp] : workers_) {
    const worker& w = *wp;
    auto it = services_.find(w.svc->name);
    if (it == services_.end() || it->second.get() != w.svc)
      return "worker " + printable_id(id) + " belongs to a forgotten service";
    ++members[w.svc];
    if (w.jobs.size() > w.credit) return "worker " + printable_id(id) + " holds more than its credit";
    if (w.idle != (w.jobs.size() < w.credit))
      return "worker " + printable_id(id) +
             (w.idle ? " is idle without credit" : " has credit but is not idle");
    if (!w.jobs.empty()) ++busy;
    for (const pending& p : w.jobs) {
      if (p.expired) {
        if (p.m.size() != 1 || p.bytes != 0) return "an expired request keeps more than its client";
        continue;
      }
      if (auto why = check_request(p, *w.svc); !why.empty())
        return why + " (held by " + printable_id(id) + ")";
      ++in_flight;
      in_flight_bytes += p.bytes;
    }
  }
  for (const auto& [name, sp] : services_) {
    const auto it = members.find(sp.get());
    if (sp->workers != (it == members.end() ? 0 : it->second))
      return "service '" + name + "' counts its workers wrongly";
  }
  std::sort(serials.begin(), serials.end());
  if (const auto twice = std::adjacent_find(serials.begin(), serials.end());
      twice != serials.end())
    return "request " + std::to_string(*twice) + " is in two places";
  const auto differs = [](std::string_view what, std::size_t kept, std::size_t counted) {
    return std::string(what) + " is " + std::to_string(kept) + ", but the tables hold " +
           std::to_string(counted);
  };
  if (queued != queued_) return differs("queued", queued_, queued);
  if (queued_bytes != queued_bytes_) return differs("queued_bytes", queued_bytes_, queued_bytes);
  if (in_flight != in_flight_) return differs("in_flight", in_flight_, in_flight);
  if (in_flight_bytes != in_flight_bytes_)
    return differs("in_flight_bytes", in_flight_bytes_, in_flight_bytes);
  std::size_t charged = 0;
  for (const auto& [client, bytes] : peer_bytes_)
    if (bytes != 0) ++charged;
  if (by_client.size() != charged) return differs("the clients charged", charged, by_client.size());
  for (const auto& [client, bytes] : by_client) {
    const auto it = peer_bytes_.find(client);
    if (it == peer_bytes_.end() || it->second != bytes)
      return "client " + printable_id(client) + " is charged wrongly";
    if (bytes + sink_.outbound_bytes(client) > options_.max_peer_bytes)
      return "client " + printable_id(client) + " holds more than max_peer_bytes";
  }
  if (queued_bytes_ + in_flight_bytes_ + sink_.outbound_bytes() > options_.max_total_bytes)
    return "more bytes held than max_total_bytes";
  if (workers_.size() > options_.max_workers) return "more workers than max_workers";
  if (services_.size() > options_.max_services) return "more services than max_services";
  if (busy != busy_) return differs("busy_workers", busy_, busy);
  if (counters_.requests != queued + in_flight + retired_)
    return std::to_string(counters_.requests) + " requests accepted, but " +
           std::to_string(queued) + " queued + " + std::to_string(in_flight) + " held + " +
           std::to_string(retired_) + " finished";
  return {};
}

}  // namespace fabric::mdp
