// The power-loss harness's model of a disk: it replays a shim event log and builds the images a
// disk could hold if the machine lost power right after a given event (see README.md), and runs
// a check of each image in a child process so an image that crashes its reader is reported, not
// fatal. Nothing here knows about the journal: any program run under the shim can use it.
#pragma once

#include "chaos/powerloss/event_log.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace fabric::testing::powerloss {

/// One event of a shim log.
struct event {
  event_type type = event_type::write;
  std::uint16_t flags = 0;
  std::uint32_t file = 0;
  std::uint64_t offset = 0;
  std::string data;
};

/// Reads a shim log. Throws: std::runtime_error for a log that cannot be read, is torn or
/// malformed, or holds an `unsupported` event (the model cannot follow what the program did).
std::vector<event> read_log(const std::filesystem::path& path);

/// The crash points worth checking: every k after which the next event is a write, sync,
/// truncate, rename or directory sync, and the last event. A crash between two marks is never worse than one after the
/// second: the disk is the same and fewer appends were promised.
std::vector<std::size_t> crash_points(const std::vector<event>& events);

/// What a crash left of one file: where it is and what it holds.
struct file_image {
  std::string path;  ///< absolute, as the program named it
  std::string bytes;
};
/// File id -> what a crash left of that file.
using file_images = std::map<std::uint32_t, file_image>;

/// A disk under the log's writes. advance_to(k) applies events up to k; image() then draws one
/// possible content of the disk after a crash there:
/// - everything a sync of the file covered is there: fsync/fdatasync make the whole file as
///   written so far durable; a write through an O_DSYNC/O_SYNC descriptor (or with RWF_DSYNC)
///   makes the 4 KiB pages it touched durable, with all they held at that moment;
/// - of the writes since, each 4 KiB piece (a write split at page boundaries) is there or not
///   independently, with probability `land`, applied in the order written; a piece past the end
///   of the file extends it, zero-filled; an unsynced truncate happens or not likewise;
/// - a file is where it was opened, or where the last rename made durable by a later sync of
///   the target directory put it; each rename since happened or not, likewise (the file system
///   makes a rename atomic: the file is under its old name or its new one, never both or
///   neither).
class disk_model {
 public:
  static constexpr std::uint64_t page_size = 4096;

  /// `events` must outlive the model.
  explicit disk_model(const std::vector<event>& events) : events_(events) {}

  /// Applies events up to and including `k`; k never goes back.
  void advance_to(std::size_t k);
  /// One image of the disk after a crash at the current point.
  file_images image(double land, std::mt19937_64& rng) const;
  /// 4 KiB pieces written since their file's last sync, that a crash may lose.
  std::size_t pending_pieces() const;

 private:
  struct piece {
    std::uint64_t offset = 0;
    std::string bytes;
    bool forced = false;    // made durable by a synchronous write: always there
    bool truncate = false;  // a size change to `offset`, not a write
  };
  struct moved {
    std::uint64_t directory = 0;
    std::string path;
  };
  struct file_state {
    std::string durable;  // as of the last sync
    std::string cache;    // as the program sees it
    std::vector<piece> pending;
    std::string path;              // as of the last rename its directory's sync made durable
    std::vector<moved> renames;    // since, in order
  };
  void apply(const event& e);

  const std::vector<event>& events_;
  std::size_t next_ = 0;
  std::map<std::uint32_t, file_state> files_;
};

/// Writes `image` into directory `dir`: each file at its path relative to `root` (the directory
/// the program worked in), so `root`/a/b becomes `dir`/a/b. Throws: std::runtime_error for a
/// file that was never opened or lies outside `root`, or when a file cannot be written.
void write_image(const file_images& image, const std::filesystem::path& root, const std::filesystem::path& dir);

/// Runs `check` in a forked child and returns the line it returned. A child that dies by a
/// signal, exits without answering, throws, or runs past `bound` (it is then killed) yields a
/// line starting "damaged:" that says so. A verdict other than "ok" ends with the start of what
/// the child wrote to stderr, if anything. Call it from a process with no other threads.
std::string run_isolated(const std::function<std::string()>& check, std::chrono::milliseconds bound);

}  // namespace fabric::testing::powerloss
