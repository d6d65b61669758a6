#include "commands.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <iostream>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <ostream>

#include <boost/program_options.hpp>

#include "build_info.hpp"
#include "dlcarbon/text.hpp"

namespace dlcarbon::cli {

namespace {

const char* kUsage =
    "dlcarbon: energy and carbon footprint of deep learning, from one training run to every replica\n"
    "\n"
    "usage: dlcarbon <command> [options]\n"
    "\n"
    "commands:\n"
    "  run SCENARIO.yaml [-o OUT.h5]   simulate a scenario and write an HDF5 file\n"
    "  sweep SWEEP.yaml [-o OUT.h5]    run many points of a scenario (grid, Latin hypercube, Monte Carlo)\n"
    "  merge -o OUT.h5 SHARD.h5 ...    merge the shard files of a sweep\n"
    "  validate [--dir DIR]            reproduce published footprints and print the errors\n"
    "  inspect FILE.h5                 print the contents of an output file\n"
    "  calibrate [--quick] [--check]   measure this CPU with oneDNN kernels, write a hardware entry\n"
    "\n"
    "options:\n"
    "  -h, --help      this help (or `dlcarbon <command> --help`)\n"
    "  --version       version and commit of this build\n"
    "\n"
    "exit codes: 0 ok, 1 failure, 2 bad input (the message names file:line:column and key), or a\n"
    "single run whose job cannot run (the file is written with the reason)\n";

}  // namespace

std::filesystem::path default_data_dir() {
  if (const char* env = std::getenv("DLCARBON_DATA_DIR"); env && *env) return env;
  return DLCARBON_DEFAULT_DATA_DIR;
}

std::filesystem::path data_dir_option(const boost::program_options::variables_map& vm) {
  if (!vm.count("data-dir")) return default_data_dir();
  const std::string given = vm["data-dir"].as<std::string>();
  // An empty value (an unset shell variable) would run without any catalog (since session 35).
  if (given.empty()) throw InputError("--data-dir: an empty directory name (name the catalog directory, or leave the option out)");
  return given;
}

std::filesystem::path default_scenario_dir() {
  if (const char* env = std::getenv("DLCARBON_SCENARIO_DIR"); env && *env) return env;
  return DLCARBON_DEFAULT_SCENARIO_DIR;
}

void check_output_path(const std::filesystem::path& given) {
  if (given.empty()) throw InputError("--output: an empty file name (name the HDF5 file to write)");
  // Where the name leads (write_run follows its links the same way).
  const std::filesystem::path out = output_target(given);
  if (out.empty()) {
    throw InputError("--output: cannot write " + text::quoted(given.string()) + ": its symbolic links loop (or pass 40)");
  }
  const std::filesystem::path parent = out.parent_path().empty() ? "." : out.parent_path();
  std::error_code ec;
  if (!std::filesystem::is_directory(parent, ec)) {
    // The system's reason where it has one other than absence (a path too long, a folder it may
    // not search; since session 44, a review: "does not exist" for a folder that does).
    const bool other = ec && ec != std::errc::no_such_file_or_directory;
    throw InputError("--output: cannot write " + text::quoted(out.string()) + ": directory " + text::quoted(parent.string()) +
                     (other ? ": " + ec.message() : std::string(" does not exist")));
  }
  if (std::filesystem::is_directory(out, ec)) {
    throw InputError("--output: cannot write " + text::quoted(out.string()) + ": it is a directory (name a file in it)");
  }
  // One of the files the command read (its scenario, a catalog, a trace) would be replaced by
  // the output (since session 34; `run -o scenario.yaml` overwrote the scenario with HDF5).
  for (const auto& input : files_read()) {
    std::error_code same_ec;
    if (std::filesystem::equivalent(input, out, same_ec)) {
      throw InputError("--output: cannot write " + text::quoted(out.string()) + ": it is one of the inputs (" +
                       text::quoted(input.string()) + "); name another file");
    }
  }
  // An HDF5 file named .yaml is never meant, and in a data directory it becomes a catalog file that
  // every later command refuses as binary (since session 43, a review: `run -o data/new.yaml`).
  if (const auto ext = out.extension().string(); ext == ".yaml" || ext == ".yml") {
    throw InputError("--output: cannot write " + text::quoted(out.string()) +
                     ": the output is an HDF5 file, and a name ending " + ext +
                     " would be read as YAML (a catalog file, in a data directory); name it .h5");
  }
  // A device, a FIFO or a socket would be replaced by the file (the output is renamed into place):
  // only a regular file, or a link to one, is overwritten.
  const auto st = std::filesystem::status(out, ec);
  if (!ec && std::filesystem::exists(st) && !std::filesystem::is_regular_file(st)) {
    throw InputError("--output: cannot write " + text::quoted(out.string()) +
                     ": it exists and is not a regular file (name a new file or a regular one)");
  }
  // An existing file of another user in a sticky folder (/tmp) cannot be replaced by a rename:
  // said now, not after the simulation (since session 44, a review: exit 1 at the end).
  if (!ec && std::filesystem::is_regular_file(st)) {
    struct stat file_st {}, dir_st {};
    const std::filesystem::path dir = out.has_parent_path() ? out.parent_path() : std::filesystem::path(".");
    if (::lstat(out.c_str(), &file_st) == 0 && ::stat(dir.c_str(), &dir_st) == 0 && (dir_st.st_mode & S_ISVTX) != 0 &&
        ::geteuid() != 0 && file_st.st_uid != ::geteuid() && dir_st.st_uid != ::geteuid()) {
      throw InputError("--output: cannot replace " + text::quoted(out.string()) + ": " + std::strerror(EPERM) +
                       " (another user's file in a folder with the sticky bit; name a new file)");
    }
  }
  // The file is written beside its name and renamed into place: that file must be creatable (a
  // directory without write permission, a name too long, a file system that takes no files), said
  // now and not after the simulation (since session 35; before, an internal failure at the end).
  // (The temporary name is shorter than the output's where that is long: the output's own length is
  // checked apart.)
  if (out.filename().string().size() > 255) {
    throw InputError("--output: cannot write " + text::quoted(out.string()) + ": " + std::strerror(ENAMETOOLONG));
  }
  const std::string probe = temporary_output(out).string();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    const int err = errno;
    if (err != EEXIST) {
      throw InputError("--output: cannot write " + text::quoted(out.string()) + ": " + std::strerror(err));
    }
  } else {
    ::close(fd);
    ::unlink(probe.c_str());
  }
}

RunRecord read_run_guarded(const std::filesystem::path& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  // Reading a whole file of a few GB takes seconds; a damaged one that sends libhdf5 round a loop
  // or through a huge allocation gets this long.
  // ($DLCARBON_READ_CHECK_S, seconds, replaces the limit: the tests take a short one.)
  double limit_s = 120 + (ec ? 0.0 : static_cast<double>(size) / 1e7);
  if (const char* env = std::getenv("DLCARBON_READ_CHECK_S"); env && *env) {
    char* end = nullptr;
    const double v = std::strtod(env, &end);
    if (end && *end == '\0' && v > 0 && std::isfinite(v)) limit_s = v;
  }
  std::cout.flush();
  std::cerr.flush();
  const pid_t child = ::fork();
  if (child == 0) {
    // A crash ends the child by its signal, whatever handlers the process had installed (a test
    // framework's, a sanitizer's), so that the parent sees it (since session 35).
    for (const int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) std::signal(sig, SIG_DFL);
    int code = 0;
    try {
      (void)read_run(path);
    } catch (...) {
      code = 2;  // an error the parent's own read will report
    }
    ::_exit(code);
  }
  if (child < 0) return read_run(path);  // no child to be had: read it here
  int status = 0;
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const pid_t done = ::waitpid(child, &status, WNOHANG);
    if (done == child) break;
    if (done < 0 && errno != EINTR) return read_run(path);
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > limit_s) {
      ::kill(child, SIGKILL);
      ::waitpid(child, &status, 0);
      throw InputError(text::printable(path.string()) + ": damaged HDF5 file: reading it did not finish in " + std::to_string(static_cast<int>(limit_s)) + " s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (WIFSIGNALED(status)) {
    throw InputError(text::printable(path.string()) + ": damaged HDF5 file: reading it crashed the HDF5 library (signal " +
                     std::to_string(WTERMSIG(status)) + ")");
  }
  // The child exits 0 or 2; anything else is a crash a sanitizer caught and turned into an exit.
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 2) {
    throw InputError(text::printable(path.string()) + ": damaged HDF5 file: reading it crashed the HDF5 library (exit " +
                     std::to_string(WEXITSTATUS(status)) + ")");
  }
  return read_run(path);
}

std::string utc_now_iso8601() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string format_number(double value, int significant) {
  if (std::isnan(value)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", significant, value);
  return buf;
}

int main(const std::vector<std::string>& args, Streams io) {
  if (args.empty()) {
    io.err << kUsage;
    return kBadInput;
  }
  const std::string& command = args.front();
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  // `help CMD` is `CMD --help`; --help and --version take nothing after them (`--version foo` was
  // exit 0 before session 35).
  if (command == "help" && rest.size() == 1) {
    // `help help` and `help --version` are the usage (since session 44, a review: "--help takes
    // no arguments").
    const std::string& what = rest.front();
    if (what == "help" || what == "-h" || what == "--help" || what == "version" || what == "--version") {
      io.out << kUsage;
      return kOk;
    }
    return main({what, "--help"}, io);
  }
  if ((command == "-h" || command == "--help" || command == "help" || command == "--version" || command == "version") &&
      !rest.empty()) {
    io.err << "dlcarbon: " << command << " takes no arguments, got " << text::quoted(rest.front()) << "\n" << kUsage;
    return kBadInput;
  }
  if (command == "-h" || command == "--help" || command == "help") {
    io.out << kUsage;
    return kOk;
  }
  if (command == "--version" || command == "version") {
    io.out << "dlcarbon " << build_info::version() << " (" << build_info::git_sha() << ")\n";
    return kOk;
  }
  try {
    if (command == "run") return command_run(rest, io);
    if (command == "validate") return command_validate(rest, io);
    if (command == "inspect") return command_inspect(rest, io);
    if (command == "calibrate") return command_calibrate(rest, io);
    if (command == "sweep") return command_sweep(rest, io);
    if (command == "merge") return command_merge(rest, io);
  } catch (const InputError& e) {
    io.err << e.what() << "\n";
    return kBadInput;
  } catch (const OutputError& e) {
    // A file that could not be written or read (a full disk, a damaged file): exit 1, said as
    // what it is (since session 40; before, "internal failure").
    io.err << "dlcarbon: " << e.what() << "\n";
    return kFailure;
  } catch (const std::exception& e) {
    io.err << "dlcarbon: internal failure: " << e.what() << "\n";
    return kFailure;
  }
  io.err << "dlcarbon: unknown command \"" << command << "\"; expected one of: run, sweep, merge, validate, inspect, calibrate "
         << "(see dlcarbon --help)\n";
  return kBadInput;
}

}  // namespace dlcarbon::cli
