#include <cerrno>
#include <cstring>
#include <iostream>

#include "commands.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  const int code = dlcarbon::cli::main(args, {std::cout, std::cerr});
  // What a command prints is its result (validate's table, inspect's listing): a standard output
  // that takes nothing (a full disk, /dev/full) is a failure, not exit 0 (since session 44, a review).
  errno = 0;
  std::cout.flush();
  if (!std::cout) {
    const int err = errno;
    std::cerr << "dlcarbon: cannot write to the standard output" << (err != 0 ? std::string(": ") + std::strerror(err) : std::string()) << "\n";
    return code == 0 ? 1 : code;
  }
  return code;
}
