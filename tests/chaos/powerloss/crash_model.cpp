// The power-loss harness's disk model: see crash_model.hpp.
#include "chaos/powerloss/crash_model.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>
#include <iterator>
#include <stdexcept>

namespace fabric::testing::powerloss {

std::vector<event> read_log(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read the event log " + path.string());
  std::ostringstream whole;
  whole << in.rdbuf();
  const std::string bytes = std::move(whole).str();
  std::vector<event> events;
  std::size_t at = 0;
  while (at < bytes.size()) {
    event_header h{};
    if (bytes.size() - at < sizeof h)
      throw std::runtime_error("the event log ends inside an event header at byte " + std::to_string(at));
    std::memcpy(&h, bytes.data() + at, sizeof h);
    if (h.magic != event_magic)
      throw std::runtime_error("the event log is malformed at byte " + std::to_string(at));
    at += sizeof h;
    if (h.size > bytes.size() - at)
      throw std::runtime_error("the event log ends inside an event at byte " + std::to_string(at));
    event e;
    e.type = static_cast<event_type>(h.type);
    e.flags = h.flags;
    e.file = h.file;
    e.offset = h.offset;
    e.data.assign(bytes, at, static_cast<std::size_t>(h.size));
    at += static_cast<std::size_t>(h.size);
    if (e.type < event_type::open || e.type > event_type::dir_sync)
      throw std::runtime_error("the event log holds an unknown event type " + std::to_string(h.type));
    if (e.type == event_type::unsupported)
      throw std::runtime_error("the program did something the power-loss model cannot follow: " + e.data);
    events.push_back(std::move(e));
  }
  return events;
}

std::vector<std::size_t> crash_points(const std::vector<event>& events) {
  std::vector<std::size_t> points;
  for (std::size_t k = 0; k < events.size(); ++k) {
    const bool last = k + 1 == events.size();
    const auto next = last ? event_type::mark : events[k + 1].type;
    if (last || next == event_type::write || next == event_type::sync || next == event_type::truncate ||
        next == event_type::rename || next == event_type::dir_sync)
      points.push_back(k);
  }
  return points;
}

void disk_model::apply(const event& e) {
  switch (e.type) {
    case event_type::write: {
      file_state& f = files_[e.file];
      const std::uint64_t end = e.offset + e.data.size();
      if (f.cache.size() < end) f.cache.resize(static_cast<std::size_t>(end), '\0');
      f.cache.replace(static_cast<std::size_t>(e.offset), e.data.size(), e.data);
      const bool durable = (e.flags & flag_durable) != 0;
      // Split at page boundaries: the disk writes (and a crash tears) whole pages.
      for (std::uint64_t at = e.offset; at < end;) {
        const std::uint64_t page = at / page_size * page_size;
        const std::uint64_t stop = std::min(end, page + page_size);
        if (durable) {
          // The kernel writes the whole cached page: what earlier writes put there goes too.
          const std::uint64_t page_end = std::min<std::uint64_t>(page + page_size, f.cache.size());
          f.pending.push_back({page, f.cache.substr(static_cast<std::size_t>(page), static_cast<std::size_t>(page_end - page)),
                               true, false});
        } else {
          f.pending.push_back({at, e.data.substr(static_cast<std::size_t>(at - e.offset), static_cast<std::size_t>(stop - at)),
                               false, false});
        }
        at = stop;
      }
      break;
    }
    case event_type::truncate: {
      file_state& f = files_[e.file];
      f.cache.resize(static_cast<std::size_t>(e.offset), '\0');
      f.pending.push_back({e.offset, {}, false, true});
      break;
    }
    case event_type::sync: {
      file_state& f = files_[e.file];
      f.durable = f.cache;
      f.pending.clear();
      break;
    }
    case event_type::open: {
      // An empty file until written: a crash image holds it. A later open (under a name a
      // rename gave it) does not move it: only a rename does.
      file_state& f = files_[e.file];
      if (f.path.empty() && f.renames.empty()) f.path = e.data;
      break;
    }
    case event_type::rename:
      files_[e.file].renames.push_back({e.offset, e.data});
      break;
    case event_type::dir_sync:
      // Every rename into the directory so far is durable, and so is where it put the file.
      for (auto& [id, f] : files_) {
        const auto last = std::find_if(f.renames.rbegin(), f.renames.rend(),
                                       [&e](const moved& m) { return m.directory == e.offset; });
        if (last == f.renames.rend()) continue;
        f.path = last->path;
        f.renames.erase(f.renames.begin(), last.base());
      }
      break;
    case event_type::mark:
    case event_type::range_hint:  // starts write-back; promises nothing, so changes nothing here
    case event_type::msync:       // no tracked file is mapped writable (read_log refuses that)
    case event_type::unsupported:
      break;
  }
}

void disk_model::advance_to(std::size_t k) {
  if (k >= events_.size()) throw std::out_of_range("disk_model: no such event");
  if (next_ > k + 1) throw std::logic_error("disk_model: crash points must not go back");
  for (; next_ <= k; ++next_) apply(events_[next_]);
}

file_images disk_model::image(double land, std::mt19937_64& rng) const {
  std::bernoulli_distribution lands(land);
  file_images out;
  for (const auto& [id, f] : files_) {
    std::string disk = f.durable;
    for (const piece& p : f.pending) {
      if (!p.forced && !lands(rng)) continue;
      if (p.truncate) {
        disk.resize(static_cast<std::size_t>(p.offset), '\0');
        continue;
      }
      const std::size_t end = static_cast<std::size_t>(p.offset) + p.bytes.size();
      if (disk.size() < end) disk.resize(end, '\0');
      disk.replace(static_cast<std::size_t>(p.offset), p.bytes.size(), p.bytes);
    }
    std::string path = f.path;
    for (const moved& m : f.renames)
      if (lands(rng)) path = m.path;
    out.emplace(id, file_image{std::move(path), std::move(disk)});
  }
  return out;
}

std::size_t disk_model::pending_pieces() const {
  std::size_t n = 0;
  for (const auto& [id, f] : files_)
    for (const piece& p : f.pending) n += p.forced ? 0 : 1;
  return n;
}

void write_image(const file_images& image, const std::filesystem::path& root, const std::filesystem::path& dir) {
  for (const auto& [id, file] : image) {
    if (file.path.empty()) throw std::runtime_error("the event log writes to a file it never opened");
    const auto relative = std::filesystem::path(file.path).lexically_relative(root);
    if (relative.empty() || *relative.begin() == "..")
      throw std::runtime_error("the event log writes to " + file.path + ", outside " + root.string());
    const auto target = dir / relative;
    std::filesystem::create_directories(target.parent_path());
    std::ofstream out(target, std::ios::binary | std::ios::trunc);
    out.write(file.bytes.data(), static_cast<std::streamsize>(file.bytes.size()));
    if (!out) throw std::runtime_error("cannot write " + target.string());
  }
}

std::string run_isolated(const std::function<std::string()>& check, std::chrono::milliseconds bound) {
  // Two pipes: the verdict, and the child's stderr (LMDB reports a failed assertion there).
  int verdict_pipe[2], err_pipe[2];
  if (::pipe2(verdict_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(verdict_pipe[0]);
    ::close(verdict_pipe[1]);
    throw std::runtime_error("pipe2 failed");
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    for (int fd : {verdict_pipe[0], verdict_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
    throw std::runtime_error("fork failed");
  }
  if (pid == 0) {
    ::close(verdict_pipe[0]);
    ::close(err_pipe[0]);
    ::dup2(err_pipe[1], 2);
    std::string verdict;
    try {
      verdict = check();
    } catch (const std::exception& e) {
      verdict = std::string("damaged: the check threw: ") + e.what();
    } catch (...) {
      verdict = "damaged: the check threw";
    }
    for (std::size_t at = 0; at < verdict.size();) {
      const ssize_t n = ::write(verdict_pipe[1], verdict.data() + at, verdict.size() - at);
      if (n <= 0) break;
      at += static_cast<std::size_t>(n);
    }
    ::_exit(0);
  }
  ::close(verdict_pipe[1]);
  ::close(err_pipe[1]);
  int fds[2] = {verdict_pipe[0], err_pipe[0]};
  std::string read[2];
  bool hung = false;
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (fds[0] >= 0 || fds[1] >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      hung = true;
      break;
    }
    pollfd polled[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};  // poll skips negative fds
    const int ready = ::poll(polled, 2, static_cast<int>(left.count()) + 1);
    if (ready <= 0) continue;  // EINTR or the deadline, which is checked above
    for (int i = 0; i < 2; ++i) {
      if (polled[i].revents == 0) continue;
      char buffer[4096];
      const ssize_t n = ::read(fds[i], buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n > 0) {
        if (read[i].size() < (std::size_t{1} << 20)) read[i].append(buffer, static_cast<std::size_t>(n));
        continue;
      }
      ::close(fds[i]);
      fds[i] = -1;
    }
  }
  for (int fd : fds)
    if (fd >= 0) ::close(fd);
  if (hung) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::string verdict = read[0];
  if (hung) verdict = "damaged: the check hung for " + std::to_string(bound.count()) + " ms";
  else if (WIFSIGNALED(status))
    verdict = "damaged: the check was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
              ::strsignal(WTERMSIG(status)) + ")";
  else if (verdict.empty())
    verdict = "damaged: the check exited without a verdict";
  if (verdict != "ok" && !read[1].empty()) {
    std::string err = read[1].substr(0, 300);
    std::replace(err.begin(), err.end(), '\n', ' ');
    verdict += " [stderr: " + err + "]";
  }
  return verdict;
}

}  // namespace fabric::testing::powerloss
