// LMDB's data file (data.mdb) read from outside LMDB, with pread and bounds checks only, so that
// no damage to it can make the reader fault. journal::open checks the meta pages with it before
// LMDB maps the file (a file shorter than its meta says would fault on the first read past its
// end), then the pages open itself has LMDB read; journal::verify walks every page of a snapshot
// with it instead of reading through LMDB, which asserts or faults on a damaged page.
//
// The layout is LMDB 0.9's, data format version 1, on a 64-bit little-endian host:
//
//   file      = meta-page meta-page *page          ; page n at offset n * page-size
//   page      = header body                        ; header: 16 bytes
//   header    = pgno(8) pad(2) flags(2) lower(2) upper(2)   ; an overflow page: pgno(8) pad(2)
//                                                            ; flags(2) pages(4)
//   meta      = magic(4) version(4) address(8) map-size(8) free-db(48) main-db(48)
//               last-page(8) txnid(8)               ; after the header of pages 0 and 1
//   db        = pad(4) flags(2) depth(2) branch-pages(8) leaf-pages(8) overflow-pages(8)
//               entries(8) root(8)                 ; the page size is the free-db's pad
//   branch, leaf = header, then (lower - 16) / 2 node offsets of 2 bytes, free space up to
//               `upper`, then the nodes
//   node      = lo(2) hi(2) flags(2) key-size(2) key data
//               ; branch: the child's page number is lo | hi << 16 | flags << 32
//               ; leaf: the data size is lo | hi << 16; flag 0x01: the data is the 8-byte page
//               ; number of the overflow pages holding it; flag 0x02: the data is a db (a named
//               ; database, in the main database)
//
// Of the two meta pages LMDB uses the one with the higher transaction id. Each page up to its
// last-page is either used by one tree or listed once in the free database, whose entries map a
// transaction id to a list of page numbers (a count, then the numbers; 8 bytes each).
//
// Thread safety: a data_file is used by one thread at a time; the functions are reentrant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace fabric::journal_detail {

/// The root of an empty tree.
inline constexpr std::uint64_t lmdb_no_page = ~std::uint64_t{0};

/// A B-tree as a meta page or the main database describes it.
struct lmdb_tree {
  std::uint16_t flags = 0;
  std::uint16_t depth = 0;
  std::uint64_t branch_pages = 0;
  std::uint64_t leaf_pages = 0;
  std::uint64_t overflow_pages = 0;
  std::uint64_t entries = 0;
  std::uint64_t root = lmdb_no_page;
};

/// One meta page.
struct lmdb_meta {
  std::uint32_t page_size = 0;
  std::uint64_t map_size = 0;
  std::uint64_t last_page = 0;
  std::uint64_t txnid = 0;
  lmdb_tree free_db;
  lmdb_tree main_db;
};

/// data.mdb, open for reading.
class data_file {
 public:
  /// Opens `file` read-only. Throws: fabric::error(io_error) when it cannot.
  explicit data_file(std::filesystem::path file);
  ~data_file();
  data_file(const data_file&) = delete;
  data_file& operator=(const data_file&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }

  /// The file's size now. Throws: fabric::error(io_error).
  std::uint64_t size() const;

  /// Reads exactly `n` bytes at `offset`. Returns false when the file ends first or reading fails.
  bool read(std::uint64_t offset, void* out, std::size_t n) const noexcept;

  /// Checks the file as LMDB will find it: both meta pages (page flag, magic, version, one page
  /// size that is a power of two from 512 to 32768, page numbers 0 and 1), and that the file
  /// holds every page up to the last one the current meta names.
  /// Returns: the meta LMDB will use. Throws: fabric::error(malformed) naming the file and what
  /// is wrong, or fabric::error(io_error) when it cannot be read.
  lmdb_meta check_meta() const;

  /// The meta page whose transaction id is `txnid`, checked as check_meta checks it, or nullopt
  /// when neither meta page holds it (a writer has since replaced it) or one fails its checks.
  std::optional<lmdb_meta> meta_of(std::uint64_t txnid) const;

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

/// An entry's value, on its leaf page or on overflow pages: read it in pieces.
class value_ref {
 public:
  value_ref(const data_file& file, std::span<const std::byte> on_page) noexcept
      : file_(&file), on_page_(on_page), size_(on_page.size()) {}
  value_ref(const data_file& file, std::uint64_t offset, std::uint64_t size) noexcept
      : file_(&file), offset_(offset), size_(size) {}

  std::uint64_t size() const noexcept { return size_; }
  /// Reads `n` bytes from `from` on. Returns false past the value's end or when reading fails.
  bool read(std::uint64_t from, void* out, std::size_t n) const noexcept;

 private:
  const data_file* file_;
  std::span<const std::byte> on_page_{};
  std::uint64_t offset_ = 0;  // in the file, when the value is on overflow pages
  std::uint64_t size_ = 0;
};

/// How much of a named database a walk reads.
enum class walk_depth {
  none,       ///< only the record of it in the main database
  last_path,  ///< the pages from its root to its last entry, as a cursor's MDB_LAST reads them
  all,        ///< every page, and every entry in key order
};

/// What a walk needs from its caller, and tells it. Every page is checked before anything on it
/// is handed out; a tree found damaged is reported once and not walked further.
struct walk_handler {
  /// A named database in the main database: how much of it to walk. Called for each, in name
  /// order, before any of them is walked.
  std::function<walk_depth(std::string_view name, const lmdb_tree& tree)> on_database;
  /// An entry of a named database: every one, in key order, for walk_depth::all; the last one
  /// for walk_depth::last_path. `value` is valid during the call only.
  std::function<void(std::string_view database, std::span<const std::byte> key, const value_ref& value)> on_entry;
  /// Damage: `database` is the named database it is in, "" for the file, the free list or the
  /// main database. `what` says where (page numbers) and what is wrong.
  std::function<void(std::string_view database, const std::string& what)> on_damage;
  /// Also read every list of free pages and check that each page up to the last one is used
  /// exactly once (by a tree or as a free page). Needs walk_depth::all for every database.
  bool account_pages = false;
  /// Also check the free database's tree and the page numbers it lists (what a writer reads
  /// when it reuses pages).
  bool free_list = false;
};

/// Walks the snapshot `meta` describes in `file`. Returns true when no damage was found.
bool walk_snapshot(const data_file& file, const lmdb_meta& meta, const walk_handler& handler);

}  // namespace fabric::journal_detail
