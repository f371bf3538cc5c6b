// Runs a fuzz target's LLVMFuzzerTestOneInput on saved inputs, without libFuzzer: what lets every
// compiler replay the committed corpora and regressions as ordinary tests.
//
//   <target> PATH...     each PATH a file, or a directory whose regular files are all run (but
//                        dot files)
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

bool run_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return false;
  }
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // A copy of its own, exactly the input's size, so that a read past the end is caught by a
  // sanitizer as it would be under libFuzzer.
  std::vector<std::uint8_t> data(bytes.begin(), bytes.end());
  LLVMFuzzerTestOneInput(data.empty() ? nullptr : data.data(), data.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::fprintf(stderr,
                 "usage: %s PATH...\n"
                 "Runs this fuzz target once on every file given, and on every regular file in\n"
                 "each directory given. Exits non-zero when a path cannot be read; an input that\n"
                 "breaks the target aborts it.\n",
                 argv[0]);
    return argc < 2 ? 2 : 0;
  }
  std::size_t runs = 0;
  bool ok = true;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path path(argv[i]);
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      std::vector<std::filesystem::path> files;
      for (const auto& entry : std::filesystem::directory_iterator(path, ec))
        // Dot files (.gitkeep) keep empty directories in git; they are not inputs.
        if (entry.is_regular_file() && entry.path().filename().string().rfind('.', 0) != 0)
          files.push_back(entry.path());
      if (ec) {
        std::fprintf(stderr, "cannot list %s: %s\n", path.c_str(), ec.message().c_str());
        ok = false;
        continue;
      }
      std::sort(files.begin(), files.end());
      for (const auto& f : files) {
        ok = run_file(f) && ok;
        ++runs;
      }
    } else if (std::filesystem::is_regular_file(path, ec)) {
      ok = run_file(path) && ok;
      ++runs;
    } else {
      std::fprintf(stderr, "no such file or directory: %s\n", path.c_str());
      ok = false;
    }
  }
  std::printf("ran %zu inputs\n", runs);
  return ok ? 0 : 1;
}
