// verify(): the whole journal checked as of one snapshot by reading data.mdb directly (never
// through LMDB, so damage cannot make it crash): every page, every record's format and CRC, and
// the accounts the writer keeps beside the records.
#include "journal/data_file.hpp"
#include "journal/journal_impl.hpp"

#include <algorithm>

namespace fabric {

using namespace journal_detail;

namespace {

// What verify() learns of one stream while walking it.
struct stream_walk {
  std::uint64_t stored_bytes = 0;  // payload bytes as the writer counts them, over every value
  std::uint64_t last = 0;          // the highest sequence number among its keys
  bool any = false;
  bool seen_version_2 = false;
  bool damaged = false;  // its tree is damaged: the walk stopped, so its totals are partial
};

std::optional<std::uint64_t> u64_value(const value_ref& value) {
  std::byte bytes[8];
  if (value.size() != 8 || !value.read(0, bytes, 8)) return std::nullopt;
  return detail::load_le<std::uint64_t>(bytes);
}

std::string key_text(std::span<const std::byte> key) {
  return std::string(reinterpret_cast<const char*>(key.data()), key.size());
}

}  // namespace

journal_verify_report journal::verify() const {
  journal_verify_report report;
  auto damaged = [&](std::string stream, std::string what) {
    report.damage.push_back({std::move(stream), std::move(what)});
  };
  // The whole check reads one snapshot, pinned by a read transaction while the file is read
  // directly: LMDB itself reads none of it, so no damaged page can make it assert or fault, and
  // the accounts compared with the records are those of the same commit.
  const std::filesystem::path path = impl_->dir / "data.mdb";
  std::optional<data_file> file;
  try {
    file.emplace(path);
  } catch (const error& e) {
    damaged({}, e.what());
    return report;
  }
  std::optional<impl::read_txn> reading;
  std::optional<lmdb_meta> meta;
  for (int attempt = 0; attempt < 100 && !meta; ++attempt) {
    // A writer that commits twice between the transaction's start and the read of the meta
    // pages has replaced its meta page on disk: take a newer snapshot.
    reading.reset();
    int rc = 0;
    reading = impl_->begin_read(rc);
    if (!reading) {
      damaged({}, "cannot begin a read transaction: " + std::string(mdb_strerror(rc)));
      return report;
    }
    meta = file->meta_of(mdb_txn_id(reading->t.get()));
  }
  if (!meta) {
    damaged({}, path.string() + ": neither meta page holds the transaction LMDB reads (a damaged meta page)");
    return report;
  }

  std::map<std::string, stream_walk, std::less<>> streams;
  std::map<std::string, std::uint64_t, std::less<>> kept_bytes, kept_last, counters;
  std::uint64_t highest_dead_letter = 0, highest_scheduled = 0;
  std::vector<std::byte> chunk(64 * 1024);

  auto check_record = [&](std::string_view stream, stream_walk& walk, std::span<const std::byte> key,
                          const value_ref& value) {
    if (value.size() >= record_header_size) walk.stored_bytes += value.size() - record_header_size;
    std::uint64_t seq = 0;
    if (!decode_seq_key(key, seq)) {
      report.corruptions.push_back({std::string(stream), 0, "its key is not a sequence number"});
      return;
    }
    if (walk.any && seq <= walk.last)
      damaged(std::string(stream), "keys out of order: seq " + std::to_string(seq) + " after seq " + std::to_string(walk.last));
    walk.last = std::max(walk.last, seq);
    walk.any = true;
    auto corrupt = [&](std::string what) { report.corruptions.push_back({std::string(stream), seq, std::move(what)}); };
    std::byte head[record_header_size];
    const auto head_size = static_cast<std::size_t>(std::min<std::uint64_t>(value.size(), record_header_size));
    if (!value.read(0, head, head_size)) return corrupt("unreadable");
    std::uint32_t crc = 0;
    std::uint32_t expected = 0;
    const record_fault fault = check_record_head(stream, seq, {head, head_size}, value.size(), crc, expected);
    if (fault != record_fault::none) return corrupt(std::string(to_string(fault)));
    for (std::uint64_t at = record_crc_from; at < value.size();) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), value.size() - at));
      if (!value.read(at, chunk.data(), n)) return corrupt("unreadable");
      crc = crc32c(crc, chunk.data(), n);
      at += n;
    }
    if (crc != expected) return corrupt(std::string(to_string(record_fault::bad_crc)));
    const auto version = std::to_integer<std::uint8_t>(head[4]);
    if (version == record_version_1 && walk.seen_version_2)
      return corrupt("a version 1 record after version 2 ones: the journal writes only version 2, and the older "
                     "rule does not bind a record to its stream");
    if (version != record_version_1) walk.seen_version_2 = true;
    ++report.records;
    report.bytes += value.size() - record_header_size;
  };

  walk_handler handler;
  handler.account_pages = true;
  handler.free_list = true;
  handler.on_database = [&](std::string_view name, const lmdb_tree&) {
    if (name.substr(0, stream_prefix.size()) == stream_prefix) {
      streams.try_emplace(std::string(name.substr(stream_prefix.size())));
      ++report.streams;
    }
    return walk_depth::all;
  };
  handler.on_entry = [&](std::string_view database, std::span<const std::byte> key, const value_ref& value) {
    if (database.substr(0, stream_prefix.size()) == stream_prefix) {
      const std::string_view stream = database.substr(stream_prefix.size());
      check_record(stream, streams.find(stream)->second, key, value);
      return;
    }
    auto keep = [&](std::map<std::string, std::uint64_t, std::less<>>& into) {
      if (auto v = u64_value(value)) into[key_text(key)] = *v;
      else damaged({}, "database '" + std::string(database) + "': the entry for '" + key_text(key) + "' is " +
                           std::to_string(value.size()) + " bytes, not 8");
    };
    if (database == stream_bytes_db) keep(kept_bytes);
    else if (database == stream_last_db) keep(kept_last);
    else if (database == counters_db) keep(counters);
    else if (database == dlq_db && key.size() == 8) highest_dead_letter = std::max(highest_dead_letter, detail::load_be<std::uint64_t>(key.data()));
    else if (database == scheduled_db && key.size() == 16)
      highest_scheduled = std::max(highest_scheduled, detail::load_be<std::uint64_t>(key.data() + 8));
  };
  handler.on_damage = [&](std::string_view database, const std::string& what) {
    if (database.substr(0, stream_prefix.size()) != stream_prefix) return damaged({}, what);
    const std::string_view stream = database.substr(stream_prefix.size());
    if (auto it = streams.find(stream); it != streams.end()) it->second.damaged = true;
    damaged(std::string(stream), what);
  };
  walk_snapshot(*file, *meta, handler);

  // The accounts the writer keeps beside the records, against the records walked.
  for (const auto& [stream, walk] : streams) {
    if (walk.damaged) continue;
    if (auto kept = kept_bytes.find(stream); kept != kept_bytes.end() && kept->second != walk.stored_bytes)
      damaged(stream, "the journal keeps " + std::to_string(kept->second) + " payload bytes for it (x/stream-bytes) "
                      "but its records hold " + std::to_string(walk.stored_bytes) + ": records were lost, or added "
                      "or changed behind its back");
    if (auto kept = kept_last.find(stream); kept != kept_last.end() && walk.any && walk.last > kept->second)
      damaged(stream, "its records go up to seq " + std::to_string(walk.last) + " but the last sequence number handed "
                      "out (x/stream-last) is " + std::to_string(kept->second));
  }
  for (const auto* kept : {&kept_last, &kept_bytes})
    for (const auto& [stream, value] : *kept)
      if (streams.find(stream) == streams.end())
        damaged(stream, std::string(kept == &kept_last ? "x/stream-last" : "x/stream-bytes") + " keeps " +
                            std::to_string(value) + " for it but there is no such stream: its database was lost");
  auto check_counter = [&](const char* name, std::uint64_t highest, const char* what) {
    if (auto c = counters.find(name); c != counters.end() && highest > c->second)
      damaged({}, std::string(what) + " " + std::to_string(highest) + " exists but the counter '" + name +
                      "' (x/counters) has handed out only " + std::to_string(c->second));
  };
  check_counter("dead-letters", highest_dead_letter, "dead letter");
  check_counter("scheduled", highest_scheduled, "scheduled record");
  return report;
}

}  // namespace fabric
