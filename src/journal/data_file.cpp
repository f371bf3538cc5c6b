// LMDB's data file read with pread and bounds checks only; see data_file.hpp for the layout.
#include "journal/data_file.hpp"

#include "core/byte_order.hpp"

#include <fabric/error.hpp>

#include <lmdb.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

namespace fabric::journal_detail {
namespace {

constexpr std::size_t header_size = 16;
constexpr std::size_t node_header_size = 8;
constexpr std::size_t db_record_size = 48;
constexpr std::size_t meta_read_size = header_size + 136;  // the header and the meta after it
constexpr std::uint32_t lmdb_magic = 0xBEEFC0DE;
constexpr std::uint32_t lmdb_data_version = 1;
constexpr std::uint32_t min_page_size = 512;
constexpr std::uint32_t max_page_size = 32768;
constexpr std::uint64_t meta_pages = 2;
constexpr unsigned max_depth = 32;  // LMDB's cursor stack: no tree it can read is deeper
constexpr std::size_t max_key_size = 511;

constexpr std::uint16_t page_branch = 0x01;
constexpr std::uint16_t page_leaf = 0x02;
constexpr std::uint16_t page_overflow = 0x04;
constexpr std::uint16_t page_meta = 0x08;
constexpr std::uint16_t page_leaf2 = 0x20;
constexpr std::uint16_t page_subpage = 0x40;
// The bits that say what a page is; the others are LMDB's in-memory bookkeeping.
constexpr std::uint16_t page_kind_mask = page_branch | page_leaf | page_overflow | page_meta | page_leaf2 | page_subpage;

constexpr std::uint16_t node_big_data = 0x01;
constexpr std::uint16_t node_sub_database = 0x02;

// Flags of a database that change how LMDB reads it; the journal opens every database without.
constexpr std::uint16_t database_flags = MDB_REVERSEKEY | MDB_DUPSORT | MDB_INTEGERKEY | MDB_DUPFIXED |
                                         MDB_INTEGERDUP | MDB_REVERSEDUP;
constexpr std::uint16_t duplicate_flags = MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP | MDB_REVERSEDUP;

std::uint16_t le16(const std::byte* p) noexcept { return detail::load_le<std::uint16_t>(p); }
std::uint32_t le32(const std::byte* p) noexcept { return detail::load_le<std::uint32_t>(p); }
std::uint64_t le64(const std::byte* p) noexcept { return detail::load_le<std::uint64_t>(p); }

std::string hex16(std::uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%04x", static_cast<unsigned>(v));
  return buf;
}

lmdb_tree parse_tree(const std::byte* p) noexcept {
  lmdb_tree t;
  t.flags = le16(p + 4);
  t.depth = le16(p + 6);
  t.branch_pages = le64(p + 8);
  t.leaf_pages = le64(p + 16);
  t.overflow_pages = le64(p + 24);
  t.entries = le64(p + 32);
  t.root = le64(p + 40);
  return t;
}

// Reads meta page `index` (0 or 1) from `buf`, which holds its first meta_read_size bytes.
// Returns what is wrong with it, or "" and fills `out`.
std::string parse_meta(std::uint64_t index, const std::byte* buf, lmdb_meta& out) {
  const std::uint16_t flags = le16(buf + 10);
  if ((flags & page_kind_mask) != page_meta) return "not a meta page (page flags " + hex16(flags) + ")";
  if (le64(buf) != index) return "holds page number " + std::to_string(le64(buf));
  const std::uint32_t magic = le32(buf + 16);
  if (magic != lmdb_magic) {
    char text[16];
    std::snprintf(text, sizeof text, "0x%08x", static_cast<unsigned>(magic));
    return std::string("bad magic ") + text + " (not an LMDB file, or the page is overwritten)";
  }
  const std::uint32_t version = le32(buf + 20);
  if (version != lmdb_data_version) {
    return "data format version " + std::to_string(version) + " (LMDB 0.9 reads version 1)";
  }
  lmdb_meta m;
  m.map_size = le64(buf + 32);
  m.free_db = parse_tree(buf + 40);
  m.page_size = le32(buf + 40);  // the free database's pad field
  m.main_db = parse_tree(buf + 88);
  m.last_page = le64(buf + 136);
  m.txnid = le64(buf + 144);
  if (m.page_size < min_page_size || m.page_size > max_page_size || (m.page_size & (m.page_size - 1)) != 0)
    return "page size " + std::to_string(m.page_size) + " is not a power of two from 512 to 32768";
  if (m.last_page < meta_pages - 1) return "names page " + std::to_string(m.last_page) + " as the last one";
  out = m;
  return {};
}

}  // namespace

data_file::data_file(std::filesystem::path file) : path_(std::move(file)) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw error(errc::io_error, "cannot read " + path_.string() + ": " + std::strerror(errno));
}

data_file::~data_file() {
  if (fd_ >= 0) ::close(fd_);
}

std::uint64_t data_file::size() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0)
    throw error(errc::io_error, "cannot read the size of " + path_.string() + ": " + std::strerror(errno));
  return static_cast<std::uint64_t>(st.st_size);
}

bool data_file::read(std::uint64_t offset, void* out, std::size_t n) const noexcept {
  auto* to = static_cast<char*>(out);
  while (n > 0) {
    if (offset > static_cast<std::uint64_t>(INT64_MAX)) return false;
    const ssize_t got = ::pread(fd_, to, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    to += got;
    n -= static_cast<std::size_t>(got);
    offset += static_cast<std::uint64_t>(got);
  }
  return true;
}

lmdb_meta data_file::check_meta() const {
  // A writer may be rewriting a meta page while it is read here, and a read racing a write can
  // see part of each: a failed check is read again before it counts.
  std::string fault;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const std::uint64_t before = size();
    if (before == 0) {
      throw error(errc::malformed, path_.string() +
                                       " is empty (0 bytes): the journal was truncated, or its creation was "
                                       "interrupted; if it never held data, remove the file to start afresh");
    }
    std::array<std::byte, meta_read_size> buf{};
    lmdb_meta metas[2];
    if (!read(0, buf.data(), buf.size())) {
      fault = "is " + std::to_string(before) + " bytes, too short to hold LMDB's first meta page";
      continue;
    }
    if (fault = parse_meta(0, buf.data(), metas[0]); !fault.empty()) {
      fault = "meta page 0: " + fault;
      continue;
    }
    const std::uint32_t page_size = metas[0].page_size;
    if (!read(page_size, buf.data(), buf.size())) {
      fault = "is " + std::to_string(size()) + " bytes, too short to hold LMDB's second meta page (at byte " +
              std::to_string(page_size) + ")";
      continue;
    }
    if (fault = parse_meta(1, buf.data(), metas[1]); !fault.empty()) {
      fault = "meta page 1: " + fault;
      continue;
    }
    if (metas[1].page_size != page_size) {
      fault = "the meta pages disagree on the page size (" + std::to_string(page_size) + " and " +
              std::to_string(metas[1].page_size) + ")";
      continue;
    }
    // LMDB uses the meta page of the later transaction, the first one on a tie.
    const int current = metas[1].txnid > metas[0].txnid ? 1 : 0;
    const lmdb_meta& m = metas[current];
    // The size after the metas were read: the file only grows, and the pages a meta names are
    // written before it.
    const std::uint64_t bytes = size();
    const std::uint64_t pages = bytes / page_size;
    if (m.last_page >= pages) {
      fault = "holds " + std::to_string(pages) + " whole pages (" + std::to_string(bytes) +
              " bytes) but its meta page " + std::to_string(current) + " (transaction " + std::to_string(m.txnid) +
              ") names page " + std::to_string(m.last_page) +
              " as the last: the file is truncated, and LMDB would read past its end";
      continue;
    }
    return m;
  }
  throw error(errc::malformed, path_.string() + ": " + fault);
}

std::optional<lmdb_meta> data_file::meta_of(std::uint64_t txnid) const {
  std::array<std::byte, meta_read_size> buf{};
  lmdb_meta first;
  if (!read(0, buf.data(), buf.size()) || !parse_meta(0, buf.data(), first).empty()) return std::nullopt;
  if (first.txnid == txnid) return first;
  lmdb_meta second;
  if (!read(first.page_size, buf.data(), buf.size()) || !parse_meta(1, buf.data(), second).empty() ||
      second.page_size != first.page_size || second.txnid != txnid)
    return std::nullopt;
  return second;
}

bool value_ref::read(std::uint64_t from, void* out, std::size_t n) const noexcept {
  if (from > size_ || n > size_ - from) return false;
  if (n == 0) return true;
  if (!on_page_.empty() || size_ == 0) {
    std::memcpy(out, on_page_.data() + from, n);
    return true;
  }
  return file_->read(offset_ + from, out, n);
}

namespace {

// What a tree's leaves hold, which decides what their entries must look like.
enum class tree_kind { free_list, main, named };

// A damaged tree stops its walk: the message says where and what.
struct tree_damaged {
  std::string what;
};

class walker {
 public:
  walker(const data_file& file, const lmdb_meta& meta, const walk_handler& handler)
      : file_(file), meta_(meta), handler_(handler), page_size_(meta.page_size), buffers_(max_depth) {}

  bool run() {
    const std::uint64_t pages = file_.size() / page_size_;
    if (meta_.last_page >= pages) {
      damage({}, "the file holds " + std::to_string(pages) + " whole pages but its transaction " +
                     std::to_string(meta_.txnid) + " names page " + std::to_string(meta_.last_page) +
                     " as the last: the file is truncated");
      return false;
    }
    if (handler_.account_pages) used_.assign(meta_.last_page + 1, false);

    if (handler_.free_list || handler_.account_pages) walk({}, "the free list", meta_.free_db, tree_kind::free_list, walk_depth::all);
    if (!walk({}, "the main database", meta_.main_db, tree_kind::main, walk_depth::all)) return false;

    std::vector<walk_depth> depths;
    for (const auto& [name, tree] : databases_)
      depths.push_back(handler_.on_database ? handler_.on_database(name, tree) : walk_depth::none);
    bool every_page_walked = clean_;
    for (std::size_t i = 0; i < databases_.size(); ++i) {
      const auto& [name, tree] = databases_[i];
      if (depths[i] != walk_depth::all) every_page_walked = false;
      if (depths[i] == walk_depth::none) continue;
      if (!walk(name, "database '" + name + "'", tree, tree_kind::named, depths[i])) every_page_walked = false;
    }
    if (handler_.account_pages && every_page_walked) account();
    return clean_;
  }

 private:
  void damage(std::string_view database, const std::string& what) {
    clean_ = false;
    if (handler_.on_damage) handler_.on_damage(database, what);
  }

  // Walks one tree. Returns false (after reporting) when it is damaged.
  bool walk(const std::string& database, const std::string& label, const lmdb_tree& tree, tree_kind kind,
            walk_depth depth) {
    tree_ = tree;
    kind_ = kind;
    depth_ = depth;
    database_ = database;
    counted_ = {};
    try {
      check_tree_record();
      if (tree.root != lmdb_no_page) {
        walk_page(tree.root, 1);
        if (depth == walk_depth::all) check_counts();
      }
    } catch (const tree_damaged& d) {
      damage(database, label + ": " + d.what);
      return false;
    }
    return true;
  }

  void check_tree_record() const {
    const std::uint16_t forbidden = kind_ == tree_kind::free_list ? duplicate_flags : database_flags;
    if ((tree_.flags & forbidden) != 0)
      throw tree_damaged{"database flags " + hex16(tree_.flags) + " that the journal never sets"};
    if (tree_.root == lmdb_no_page) {
      if (tree_.depth != 0 || tree_.entries != 0 || tree_.branch_pages != 0 || tree_.leaf_pages != 0 ||
          tree_.overflow_pages != 0)
        throw tree_damaged{"it has no root page but counts " + std::to_string(tree_.entries) + " entries"};
      return;
    }
    if (tree_.root < meta_pages || tree_.root > meta_.last_page)
      throw tree_damaged{"its root page " + std::to_string(tree_.root) + " is outside the pages in use (2 to " +
                         std::to_string(meta_.last_page) + ")"};
    if (tree_.depth == 0 || tree_.depth > max_depth)
      throw tree_damaged{"its depth " + std::to_string(tree_.depth) + " is not from 1 to 32"};
  }

  void check_counts() const {
    auto differ = [](const char* what, std::uint64_t found, std::uint64_t recorded) {
      return std::string(what) + ": its pages hold " + std::to_string(found) + " but its record counts " +
             std::to_string(recorded);
    };
    if (counted_.entries != tree_.entries) throw tree_damaged{differ("entries", counted_.entries, tree_.entries)};
    if (counted_.branch_pages != tree_.branch_pages)
      throw tree_damaged{differ("branch pages", counted_.branch_pages, tree_.branch_pages)};
    if (counted_.leaf_pages != tree_.leaf_pages)
      throw tree_damaged{differ("leaf pages", counted_.leaf_pages, tree_.leaf_pages)};
    if (counted_.overflow_pages != tree_.overflow_pages)
      throw tree_damaged{differ("overflow pages", counted_.overflow_pages, tree_.overflow_pages)};
  }

  std::string page_text(std::uint64_t pgno) const { return "page " + std::to_string(pgno); }

  void use_page(std::uint64_t pgno, const std::string& as) {
    if (pgno < meta_pages || pgno > meta_.last_page)
      throw tree_damaged{as + " refers to page " + std::to_string(pgno) + ", outside the pages in use (2 to " +
                         std::to_string(meta_.last_page) + ")"};
    if (used_.empty()) return;
    if (used_[pgno]) throw tree_damaged{page_text(pgno) + " is used twice (by two trees, or by a tree and the free list)"};
    used_[pgno] = true;
  }

  // Sized for the deepest tree up front, so a page held by a caller never moves.
  std::vector<std::byte>& buffer(unsigned level) {
    auto& b = buffers_[level - 1];
    b.resize(page_size_);
    return b;
  }

  void walk_page(std::uint64_t pgno, unsigned level) {
    const std::string where = page_text(pgno);
    use_page(pgno, level == 1 ? std::string("the root") : "a branch page");
    std::vector<std::byte>& page = buffer(level);
    if (!file_.read(pgno * page_size_, page.data(), page_size_)) throw tree_damaged{where + " cannot be read"};
    const std::byte* p = page.data();
    if (le64(p) != pgno) throw tree_damaged{where + " holds page number " + std::to_string(le64(p)) + " (misplaced or overwritten)"};
    const std::uint16_t kind = le16(p + 10) & page_kind_mask;
    const bool leaf = level == tree_.depth;
    if (kind != (leaf ? page_leaf : page_branch))
      throw tree_damaged{where + " should be a " + (leaf ? "leaf" : "branch") + " page (level " + std::to_string(level) +
                         " of " + std::to_string(tree_.depth) + ") but its flags are " + hex16(le16(p + 10))};
    const std::size_t lower = le16(p + 12);
    const std::size_t upper = le16(p + 14);
    if (lower < header_size || lower > upper || upper > page_size_ || (lower - header_size) % 2 != 0)
      throw tree_damaged{where + " has bad free-space bounds (lower " + std::to_string(lower) + ", upper " +
                         std::to_string(upper) + ")"};
    const std::size_t nodes = (lower - header_size) / 2;
    const std::size_t fewest = leaf ? 1 : kind_ == tree_kind::free_list ? 1 : 2;
    if (nodes < fewest)
      throw tree_damaged{where + " holds " + std::to_string(nodes) + " nodes; a " + (leaf ? "leaf" : "branch") +
                         " page holds at least " + std::to_string(fewest)};
    ++(leaf ? counted_.leaf_pages : counted_.branch_pages);

    for (std::size_t i = 0; i < nodes; ++i) {
      const std::size_t at = le16(p + header_size + 2 * i);
      const std::string node = where + " node " + std::to_string(i);
      if (at < upper || at % 2 != 0 || at + node_header_size > page_size_)
        throw tree_damaged{node + " is at offset " + std::to_string(at) + ", outside the page's nodes"};
      const std::byte* n = p + at;
      const std::size_t key_size = le16(n + 6);
      if (key_size > max_key_size || at + node_header_size + key_size > page_size_)
        throw tree_damaged{node + " has a key of " + std::to_string(key_size) + " bytes, past the page's end"};
      const std::uint64_t lo_hi = static_cast<std::uint64_t>(le16(n)) | static_cast<std::uint64_t>(le16(n + 2)) << 16;
      const std::uint16_t node_flags = le16(n + 4);
      if (!leaf) {
        // A branch node's flags hold the child page number's high bits.
        const std::uint64_t child = lo_hi | static_cast<std::uint64_t>(node_flags) << 32;
        if (depth_ == walk_depth::all || i + 1 == nodes) walk_page(child, level + 1);
        continue;
      }
      ++counted_.entries;
      const std::span<const std::byte> key(n + node_header_size, key_size);
      const std::size_t data_at = at + node_header_size + key_size;
      const bool deliver = depth_ == walk_depth::all || i + 1 == nodes;
      if (kind_ == tree_kind::main) {
        if (node_flags != node_sub_database || lo_hi != db_record_size || data_at + db_record_size > page_size_)
          throw tree_damaged{node + " is not the record of a named database (flags " + hex16(node_flags) + ", " +
                             std::to_string(lo_hi) + " bytes)"};
        if (key_size == 0) throw tree_damaged{node + " names a database with an empty name"};
        databases_.emplace_back(std::string(reinterpret_cast<const char*>(key.data()), key.size()),
                                parse_tree(p + data_at));
        continue;
      }
      if (node_flags != 0 && node_flags != node_big_data)
        throw tree_damaged{node + " has flags " + hex16(node_flags) + " (duplicates or a nested database, which the journal never writes)"};
      if (node_flags == node_big_data) {
        if (data_at + 8 > page_size_) throw tree_damaged{node + "'s overflow page number runs past the page's end"};
        const std::uint64_t first = le64(p + data_at);
        check_overflow(first, lo_hi, node);
        if (deliver) deliver_entry(key, value_ref(file_, first * page_size_ + header_size, lo_hi));
      } else {
        if (data_at + lo_hi > page_size_)
          throw tree_damaged{node + " has a value of " + std::to_string(lo_hi) + " bytes, past the page's end"};
        if (deliver) deliver_entry(key, value_ref(file_, std::span<const std::byte>(p + data_at, lo_hi)));
      }
    }
  }

  // Checks the run of overflow pages a value of `size` bytes starting at page `first` claims.
  void check_overflow(std::uint64_t first, std::uint64_t size, const std::string& node) {
    if (first < meta_pages || first > meta_.last_page)
      throw tree_damaged{node + " refers to overflow page " + std::to_string(first) + ", outside the pages in use"};
    std::array<std::byte, header_size> h{};
    if (!file_.read(first * page_size_, h.data(), h.size())) throw tree_damaged{page_text(first) + " cannot be read"};
    if (le64(h.data()) != first)
      throw tree_damaged{page_text(first) + " holds page number " + std::to_string(le64(h.data())) + " (misplaced or overwritten)"};
    if ((le16(h.data() + 10) & page_kind_mask) != page_overflow)
      throw tree_damaged{page_text(first) + " should be an overflow page (" + node + ") but its flags are " +
                         hex16(le16(h.data() + 10))};
    const std::uint64_t pages = le32(h.data() + 12);
    if (pages == 0 || pages - 1 > meta_.last_page - first)
      throw tree_damaged{page_text(first) + " claims " + std::to_string(pages) + " overflow pages, past the last page"};
    if (size > pages * page_size_ - header_size)
      throw tree_damaged{node + " claims " + std::to_string(size) + " bytes, more than its " + std::to_string(pages) +
                         " overflow pages hold"};
    for (std::uint64_t i = 0; i < pages; ++i) use_page(first + i, node);
    counted_.overflow_pages += pages;
  }

  void deliver_entry(std::span<const std::byte> key, const value_ref& value) {
    if (kind_ == tree_kind::free_list) {
      free_list_entry(key, value);
      return;
    }
    if (handler_.on_entry) handler_.on_entry(database_, key, value);
  }

  // An entry of the free database: a transaction id, and the pages it freed.
  void free_list_entry(std::span<const std::byte> key, const value_ref& value) {
    const std::string where = "its entry " + std::to_string(counted_.entries);
    if (key.size() != 8) throw tree_damaged{where + " has a key of " + std::to_string(key.size()) + " bytes, not a transaction id"};
    std::array<std::byte, 8> word{};
    if (value.size() < 8 || value.size() % 8 != 0 || !value.read(0, word.data(), 8))
      throw tree_damaged{where + " is " + std::to_string(value.size()) + " bytes, not a list of page numbers"};
    const std::uint64_t count = le64(word.data());
    if (count != value.size() / 8 - 1)
      throw tree_damaged{where + " says it lists " + std::to_string(count) + " pages but holds " +
                         std::to_string(value.size() / 8 - 1)};
    std::array<std::byte, 8 * 512> chunk{};
    for (std::uint64_t done = 0; done < count;) {
      const std::uint64_t n = std::min<std::uint64_t>(count - done, 512);
      if (!value.read(8 * (done + 1), chunk.data(), static_cast<std::size_t>(8 * n))) throw tree_damaged{where + " cannot be read"};
      for (std::uint64_t i = 0; i < n; ++i) use_page(le64(chunk.data() + 8 * i), where);
      done += n;
    }
  }

  void account() {
    std::uint64_t unused = 0;
    std::uint64_t first = 0;
    for (std::uint64_t pgno = meta_pages; pgno <= meta_.last_page; ++pgno) {
      if (used_[pgno]) continue;
      if (unused++ == 0) first = pgno;
    }
    if (unused > 0)
      damage({}, std::to_string(unused) + " of the pages up to the last one (" + std::to_string(meta_.last_page) +
                     ") are neither in use nor free, page " + std::to_string(first) +
                     " the first: a tree or the free list lost them");
  }

  const data_file& file_;
  const lmdb_meta& meta_;
  const walk_handler& handler_;
  const std::size_t page_size_;
  bool clean_ = true;
  std::vector<bool> used_;
  std::vector<std::vector<std::byte>> buffers_;  // one page per level of the tree being walked
  std::vector<std::pair<std::string, lmdb_tree>> databases_;

  // The tree being walked.
  lmdb_tree tree_;
  tree_kind kind_ = tree_kind::named;
  walk_depth depth_ = walk_depth::all;
  std::string database_;
  struct {
    std::uint64_t entries = 0, branch_pages = 0, leaf_pages = 0, overflow_pages = 0;
  } counted_;
};

}  // namespace

bool walk_snapshot(const data_file& file, const lmdb_meta& meta, const walk_handler& handler) {
  return walker(file, meta, handler).run();
}

}  // namespace fabric::journal_detail
