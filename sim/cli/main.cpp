#include <iostream>

#include "commands.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return dlcarbon::cli::main(args, {std::cout, std::cerr});
}
