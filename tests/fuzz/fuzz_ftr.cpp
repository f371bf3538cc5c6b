// Fuzz target: Titanic replication's codecs (docs/ha.md, section 9.2): FTR/1 command frames and
// the ops of a replication log entry. The first octet picks: an FTR/1 message (the frames that
// follow), or an entry's ops (the bytes that follow). Both grammars are canonical: what parses
// must build back to exactly the input.
#include "fuzz_frames.hpp"

#include "reliability/titanic_replication.hpp"
#include "reliability/titanic_store.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

namespace {

using fabric::message;
using fabric::fuzz::check;
namespace repl = fabric::titanic::repl;
namespace store = fabric::titanic::store;

// The first two frames of `m` equal those of `built`.
bool same_head(const message& m, const message& built) {
  return built.size() == 2 && m.size() >= 2 && m.view(0) == built.view(0) && m.view(1) == built.view(1);
}

void ftr(const message& m) {
  const repl::parsed p = repl::parse(m);
  if (const auto* f = std::get_if<repl::fetch_fields>(&p)) {
    check(m.size() == 2 && same_head(m, repl::build_fetch(f->at, f->max_bytes)), "a fetch builds back differently");
  } else if (const auto* r = std::get_if<repl::records_fields>(&p)) {
    check(same_head(m, repl::build_records(r->head)), "a records head builds back differently");
    for (std::size_t i = 2; i < m.size(); ++i) {
      std::uint64_t pos = 0;
      std::string_view ops;
      if (repl::split_entry(m.view(i), pos, ops)) check(pos != 0 && ops.size() + 8 == m.view(i).size(), "an entry split wrongly");
    }
  } else if (const auto* s = std::get_if<repl::resync_fields>(&p)) {
    check(m.size() == 2 && same_head(m, repl::build_resync(s->head, s->agree)), "a resync builds back differently");
  } else if (const auto* sf = std::get_if<repl::snapshot_fetch_fields>(&p)) {
    check(m.size() == 2 && same_head(m, repl::build_snapshot_fetch(sf->after)), "a snapshot-fetch builds back differently");
  } else if (const auto* sn = std::get_if<repl::snapshot_fields>(&p)) {
    check(same_head(m, repl::build_snapshot(sn->start, sn->done, sn->last)), "a snapshot head builds back differently");
  } else if (std::holds_alternative<repl::handoff_fields>(p)) {
    check(same_head(m, repl::build_handoff()), "a handoff head builds back differently");
  } else if (const auto* h = std::get_if<repl::handed_fields>(&p)) {
    check(h->held <= h->total, "a handed answer holds more than it was given");
    check(m.size() == 2 && same_head(m, repl::build_handed(h->held, h->total)), "a handed answer builds back differently");
  }
}

void ops(std::string_view bytes) {
  store::ops o;
  if (!store::decode_ops(bytes, o)) return;
  check(store::ops_term(bytes) == o.term, "an entry's term reads differently alone");
  check(store::encode_ops(o.term, o.wall_ns, o.changes) == bytes, "an entry encodes back differently");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fabric::fuzz::input in(data, size);
  if (in.byte() % 2 == 0) {
    ftr(in.rest_message(64));
  } else {
    ops(in.rest());
  }
  return 0;
}
