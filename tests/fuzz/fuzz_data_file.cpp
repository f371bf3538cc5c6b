// Fuzz target: the reader of LMDB's data file (src/journal/data_file.hpp), which journal::open
// and journal::verify use on a data.mdb that may be damaged, before LMDB maps it. The input is
// the file; the target checks its meta pages, then walks the snapshot they name with every check
// on (page accounting, the free list), reading every value it is handed. Nothing in the file may
// make the reader fault, read out of bounds or allocate without bound.
#include "fuzz_frames.hpp"

#include "journal/data_file.hpp"

#include <fabric/error.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace {

using fabric::fuzz::check;
namespace jd = fabric::journal_detail;

// The input as a file: an anonymous memory file, named through /proc/self/fd.
class memory_file {
 public:
  memory_file(const std::uint8_t* data, std::size_t size) : fd_(memfd_create("fuzz-data-mdb", MFD_CLOEXEC)) {
    check(fd_ >= 0, "memfd_create failed");
    std::size_t at = 0;
    while (at < size) {
      const ssize_t n = ::write(fd_, data + at, size - at);
      check(n > 0, "writing the memory file failed");
      at += static_cast<std::size_t>(n);
    }
  }
  ~memory_file() { ::close(fd_); }
  memory_file(const memory_file&) = delete;
  memory_file& operator=(const memory_file&) = delete;
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t mode = data[0];
  memory_file file(data + 1, size - 1);
  const jd::data_file reader(file.path());
  jd::lmdb_meta meta;
  try {
    meta = reader.check_meta();
  } catch (const fabric::error&) {
    return 0;  // refused, as it should be for a damaged file
  }
  check(meta.page_size >= 512 && meta.page_size <= 32768 && (meta.page_size & (meta.page_size - 1)) == 0,
        "check_meta accepted a page size LMDB cannot have");
  check(reader.size() >= (meta.last_page + 1) * meta.page_size, "check_meta accepted a file shorter than its meta says");
  (void)reader.meta_of(meta.txnid);

  std::size_t entries = 0;
  std::vector<std::byte> buffer(256);
  jd::walk_handler handler;
  handler.account_pages = (mode & 1) != 0;
  handler.free_list = (mode & 2) != 0;
  handler.on_database = [&](std::string_view, const jd::lmdb_tree&) {
    if (handler.account_pages) return jd::walk_depth::all;
    return (mode & 4) ? jd::walk_depth::last_path : jd::walk_depth::all;
  };
  handler.on_entry = [&](std::string_view, std::span<const std::byte>, const jd::value_ref& value) {
    ++entries;
    // Read the value's start, middle and end, as verify reads a record's head and rest.
    const std::uint64_t n = value.size();
    for (const std::uint64_t from : {std::uint64_t{0}, n / 2, n > buffer.size() ? n - buffer.size() : 0}) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), n - std::min(n, from)));
      (void)value.read(from, buffer.data(), want);
    }
    check(!value.read(n, buffer.data(), 1), "a value read past its end");
  };
  handler.on_damage = [&](std::string_view, const std::string& what) { check(!what.empty(), "damage without a description"); };
  (void)jd::walk_snapshot(reader, meta, handler);
  return 0;
}
