// A table of damaged journal files, shared by the journal's tests and fabric-journal's: one
// journal built the same way each time, and the ways its data.mdb is damaged (truncated, meta
// pages wrecked, pages in use zeroed or overwritten, garbage appended). The pages to damage are
// found by reading LMDB's layout here, independently of the journal's own reader of it.
#pragma once

#include "core/byte_order.hpp"
#include "support/support.hpp"

#include <fabric/journal.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace fabric::testing {

/// Where the damage goes in a data file: LMDB 0.9's layout, read from the current meta page.
struct lmdb_layout {
  std::size_t page_size = 0;
  int current_meta = 0;         ///< 0 or 1: the meta page with the higher transaction id
  std::uint64_t last_page = 0;
  std::uint64_t main_root = 0;  ///< the main database's root (the list of named databases)
  std::uint64_t free_root = 0;
  std::uint64_t stream_root = 0;      ///< s/orders: a branch page
  std::uint64_t stream_leaf = 0;      ///< its first leaf
  std::uint64_t stream_overflow = 0;  ///< an overflow page holding one of its big records
  std::size_t stream_record = 0;      ///< offset in the file of s/orders' record in the main database
};

namespace damage_detail {

// LMDB's on-disk integers: little-endian, 2, 4 or 8 bytes wide.
inline std::uint64_t get(const std::string& file, std::size_t at, int bytes) {
  if (at + static_cast<std::size_t>(bytes) > file.size()) throw std::runtime_error("layout: read past the file");
  const char* p = file.data() + at;
  switch (bytes) {
    case 2: return fabric::detail::load_le<std::uint16_t>(p);
    case 4: return fabric::detail::load_le<std::uint32_t>(p);
    case 8: return fabric::detail::load_le<std::uint64_t>(p);
  }
  throw std::logic_error("layout: no integer is " + std::to_string(bytes) + " bytes wide");
}

inline void put(std::string& file, std::size_t at, std::uint64_t v, int bytes) {
  char* p = file.data() + at;
  switch (bytes) {
    case 2: return fabric::detail::store_le(static_cast<std::uint16_t>(v), p);
    case 4: return fabric::detail::store_le(static_cast<std::uint32_t>(v), p);
    case 8: return fabric::detail::store_le(v, p);
  }
  throw std::logic_error("layout: no integer is " + std::to_string(bytes) + " bytes wide");
}

// Offsets in a meta page: the page header (16 bytes), then the meta itself.
constexpr std::size_t meta_magic = 16, meta_version = 20, meta_page_size = 40, meta_free_root = 80,
                      meta_main_root = 128, meta_last_page = 136, meta_txnid = 144;

// The data of leaf node `i` of the page at `page`: its key and the offset of its data.
inline std::size_t node_at(const std::string& file, std::size_t page, std::size_t i) {
  return page + get(file, page + 16 + 2 * i, 2);
}

}  // namespace damage_detail

/// Reads the layout of the journal built by build_damage_subject. Throws std::runtime_error when
/// the file is not laid out as expected (the test then fails, rather than damage a random page).
inline lmdb_layout read_layout(const std::string& file) {
  using namespace damage_detail;
  lmdb_layout l;
  l.page_size = get(file, meta_page_size, 4);
  const std::size_t ps = l.page_size;
  l.current_meta = get(file, ps + meta_txnid, 8) > get(file, meta_txnid, 8) ? 1 : 0;
  const std::size_t meta = static_cast<std::size_t>(l.current_meta) * ps;
  l.last_page = get(file, meta + meta_last_page, 8);
  l.main_root = get(file, meta + meta_main_root, 8);
  l.free_root = get(file, meta + meta_free_root, 8);
  const std::size_t main = l.main_root * ps;
  if (get(file, main + 10, 2) != 0x02) throw std::runtime_error("layout: the main database is not one leaf page");
  const std::size_t names = (get(file, main + 12, 2) - 16) / 2;
  for (std::size_t i = 0; i < names; ++i) {
    const std::size_t node = node_at(file, main, i);
    const std::size_t key_size = get(file, node + 6, 2);
    if (file.compare(node + 8, key_size, "s/orders") != 0 || key_size != 8) continue;
    const std::size_t db = node + 8 + key_size;  // an MDB_db record: root at +40, depth at +6
    l.stream_record = db;
    l.stream_root = get(file, db + 40, 8);
    if (get(file, db + 6, 2) != 2) throw std::runtime_error("layout: s/orders is not two levels deep");
  }
  if (l.stream_root == 0) throw std::runtime_error("layout: no s/orders database");
  const std::size_t root = l.stream_root * ps;
  const std::size_t first = node_at(file, root, 0);
  l.stream_leaf = get(file, first, 4) | get(file, first + 4, 2) << 32;  // a branch node's child
  const std::size_t leaf = l.stream_leaf * ps;
  const std::size_t records = (get(file, leaf + 12, 2) - 16) / 2;
  for (std::size_t i = 0; i < records && l.stream_overflow == 0; ++i) {
    const std::size_t node = node_at(file, leaf, i);
    if ((get(file, node + 4, 2) & 0x01) != 0) l.stream_overflow = get(file, node + 8 + get(file, node + 6, 2), 8);
  }
  if (l.stream_overflow == 0) throw std::runtime_error("layout: no overflow page in the first leaf");
  return l;
}

/// Builds the journal the damage table starts from: a stream of 2000 records, every 7th of them
/// large enough for an overflow page, a second stream and a cursor.
inline void build_damage_subject(const std::filesystem::path& dir) {
  auto j = journal::open(dir, fast_journal_options());
  std::future<result<std::uint64_t>> last;
  for (int i = 1; i <= 2000; ++i)
    last = j.append("orders", "order " + std::to_string(i) + std::string(i % 7 == 0 ? 3000 : 30, '.'));
  for (int i = 1; i <= 100; ++i) last = j.append("audit", "entry " + std::to_string(i));
  ASSERT_TRUE(last.get());
  ASSERT_TRUE(j.transact([](journal_txn& t) { t.set_cursor("reader", 1500); }));
}

/// One way to damage data.mdb.
struct file_damage {
  std::string name;
  /// The damage is in the meta pages or the file's length: open() must refuse the file, with a
  /// message that contains `says`. Otherwise open() may open it or refuse it, but not crash.
  bool refused_at_open = false;
  std::string says;
  std::function<void(std::string& file, const lmdb_layout& l)> apply;
};

/// The table. Every case but "grown with garbage" leaves a journal that fabric-journal verify
/// must call damaged.
inline std::vector<file_damage> damaged_file_cases() {
  using namespace damage_detail;
  auto zero_page = [](std::uint64_t lmdb_layout::*which) {
    return [which](std::string& f, const lmdb_layout& l) {
      std::memset(f.data() + l.*which * l.page_size, 0, l.page_size);
    };
  };
  auto random_page = [](std::uint64_t lmdb_layout::*which, std::size_t from, std::size_t count) {
    return [which, from, count](std::string& f, const lmdb_layout& l) {
      std::mt19937 rng(static_cast<unsigned>(l.*which));
      const std::size_t n = count == 0 ? l.page_size - from : count;
      for (std::size_t i = 0; i < n; ++i) f[l.*which * l.page_size + from + i] = static_cast<char>(rng());
    };
  };
  auto current_meta = [](const lmdb_layout& l) { return static_cast<std::size_t>(l.current_meta) * l.page_size; };
  return {
      {"truncated to 0 bytes", true, "empty", [](std::string& f, const lmdb_layout&) { f.clear(); }},
      {"truncated inside the first meta page", true, "too short", [](std::string& f, const lmdb_layout&) { f.resize(100); }},
      {"truncated inside the second meta page", true, "too short",
       [](std::string& f, const lmdb_layout& l) { f.resize(l.page_size + 50); }},
      {"truncated after the meta pages", true, "truncated",
       [](std::string& f, const lmdb_layout& l) { f.resize(2 * l.page_size); }},
      {"truncated in the middle of the data", true, "truncated",
       [](std::string& f, const lmdb_layout& l) { f.resize((l.last_page / 2) * l.page_size); }},
      {"one page short", true, "truncated", [](std::string& f, const lmdb_layout& l) { f.resize(f.size() - l.page_size); }},
      {"half a page short", true, "truncated",
       [](std::string& f, const lmdb_layout& l) { f.resize(f.size() - l.page_size / 2); }},
      {"first meta page zeroed", true, "meta page 0",
       [](std::string& f, const lmdb_layout& l) { std::memset(f.data(), 0, l.page_size); }},
      {"second meta page zeroed", true, "meta page 1",
       [](std::string& f, const lmdb_layout& l) { std::memset(f.data() + l.page_size, 0, l.page_size); }},
      {"both meta pages zeroed", true, "meta page 0",
       [](std::string& f, const lmdb_layout& l) { std::memset(f.data(), 0, 2 * l.page_size); }},
      {"random bytes over the first meta page", true, "meta page 0",
       [](std::string& f, const lmdb_layout& l) {
         std::mt19937 rng(11);
         for (std::size_t i = 0; i < l.page_size; ++i) f[i] = static_cast<char>(rng());
       }},
      {"bad magic", true, "magic",
       [=](std::string& f, const lmdb_layout& l) { put(f, current_meta(l) + meta_magic, 0xDEADBEEF, 4); }},
      {"bad version", true, "version",
       [=](std::string& f, const lmdb_layout& l) { put(f, current_meta(l) + meta_version, 2, 4); }},
      {"page sizes that disagree", true, "page size",
       [=](std::string& f, const lmdb_layout& l) { put(f, l.page_size + meta_page_size, 2 * l.page_size, 4); }},
      {"a page size that is no power of two", true, "page size",
       [](std::string& f, const lmdb_layout& l) {
         put(f, meta_page_size, 3000, 4);
         put(f, l.page_size + meta_page_size, 3000, 4);
       }},
      {"a page size twice the real one", true, "meta page 1",
       [](std::string& f, const lmdb_layout& l) {
         put(f, meta_page_size, 2 * l.page_size, 4);
         put(f, l.page_size + meta_page_size, 2 * l.page_size, 4);
       }},
      {"a last page number past the end of the file", true, "truncated",
       [=](std::string& f, const lmdb_layout& l) { put(f, current_meta(l) + meta_last_page, l.last_page + 1000, 8); }},
      {"a main root past the last page", true, "root",
       [=](std::string& f, const lmdb_layout& l) { put(f, current_meta(l) + meta_main_root, l.last_page + 1, 8); }},
      {"grown with garbage", false, "",
       [](std::string& f, const lmdb_layout& l) {
         std::mt19937 rng(12);
         for (std::size_t i = 0; i < 3 * l.page_size; ++i) f.push_back(static_cast<char>(rng()));
       }},
      {"main root zeroed", false, "", zero_page(&lmdb_layout::main_root)},
      {"free list root zeroed", false, "", zero_page(&lmdb_layout::free_root)},
      {"stream root (a branch page) zeroed", false, "", zero_page(&lmdb_layout::stream_root)},
      {"stream leaf zeroed", false, "", zero_page(&lmdb_layout::stream_leaf)},
      {"overflow page zeroed", false, "", zero_page(&lmdb_layout::stream_overflow)},
      {"random bytes over the main root", false, "", random_page(&lmdb_layout::main_root, 0, 0)},
      {"random bytes over the stream root", false, "", random_page(&lmdb_layout::stream_root, 0, 0)},
      {"random bytes over a stream leaf", false, "", random_page(&lmdb_layout::stream_leaf, 0, 0)},
      {"random bytes in a stream leaf's nodes", false, "", random_page(&lmdb_layout::stream_leaf, 16, 64)},
      {"random bytes at the end of a stream leaf", false, "", random_page(&lmdb_layout::stream_leaf, 3500, 500)},
      {"random bytes in the main root's nodes", false, "", random_page(&lmdb_layout::main_root, 16, 48)},
      {"random bytes over the overflow page's header", false, "", random_page(&lmdb_layout::stream_overflow, 0, 16)},
      {"a stream's entry count off by one", false, "",
       [](std::string& f, const lmdb_layout& l) { put(f, l.stream_record + 32, get(f, l.stream_record + 32, 8) + 1, 8); }},
  };
}

inline std::string read_file_bytes(const std::filesystem::path& file) {
  std::string bytes(static_cast<std::size_t>(std::filesystem::file_size(file)), '\0');
  std::ifstream in(file, std::ios::binary);
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  bytes.resize(static_cast<std::size_t>(in.gcount()));
  return bytes;
}

/// Writes `from`'s data.mdb, damaged by `damage`, as `to`/data.mdb (`to` must exist). No lock
/// file is copied: each damaged journal is opened as if for the first time.
inline void write_damaged_copy(const std::filesystem::path& from, const std::filesystem::path& to,
                               const file_damage& damage) {
  std::string file = read_file_bytes(from / "data.mdb");
  const lmdb_layout layout = read_layout(file);
  damage.apply(file, layout);
  std::ofstream(to / "data.mdb", std::ios::binary | std::ios::trunc).write(file.data(), static_cast<std::streamsize>(file.size()));
}

}  // namespace fabric::testing
