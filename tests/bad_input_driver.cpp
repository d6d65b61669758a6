// Runs `dlcarbon run CASE` (or `dlcarbon sweep CASE`) the way a user would and checks what a user would see:
// exactly the expected one-line message on stderr, exit code 2, no output file, no crash.
//
// usage: bad_input_driver DLCARBON CASE.yaml CATALOG_DIR OUT_DIR [run|sweep]
// The expected message is the case's first line after "# expect: ", or the content of
// CASE.expect beside it (for files that cannot hold a comment, such as an empty file).
// The command runs in the case's folder with the bare file name, so messages are stable.

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

namespace fs = std::filesystem;

namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

std::string expected_message(const fs::path& case_file) {
  fs::path sidecar = case_file;
  sidecar.replace_extension(".expect");
  std::string line;
  if (fs::exists(sidecar)) {
    std::ifstream in(sidecar);
    std::getline(in, line);
    return line;
  }
  std::ifstream in(case_file, std::ios::binary);
  std::getline(in, line);
  const std::string tag = "# expect: ";
  if (line.rfind(tag, 0) != 0) return "";
  return line.substr(tag.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5 && argc != 6) {
    std::cerr << "usage: bad_input_driver DLCARBON CASE.yaml CATALOG_DIR OUT_DIR [run|sweep]\n";
    return 2;
  }
  const fs::path exe = fs::absolute(argv[1]);
  const fs::path case_file = fs::absolute(argv[2]);
  const fs::path catalog = fs::absolute(argv[3]);
  const fs::path out_dir = fs::absolute(argv[4]);
  const std::string subcommand = argc == 6 ? argv[5] : "run";
  fs::create_directories(out_dir);
  const fs::path out = out_dir / (case_file.stem().string() + ".h5");
  fs::remove(out);

  std::string expected;
  if (fs::exists(case_file)) {
    expected = expected_message(case_file);
  } else {
    expected = case_file.filename().string() + ": cannot read the file: No such file or directory";
  }
  if (expected.empty()) {
    std::cerr << case_file << ": no `# expect: ` first line and no .expect file\n";
    return 1;
  }

  if (chdir(case_file.parent_path().c_str()) != 0) {
    std::perror("chdir");
    return 1;
  }
  const std::string command = shell_quote(exe.string()) + " " + subcommand + " " + shell_quote(case_file.filename().string()) +
                              " --data-dir " + shell_quote(catalog.string()) + " -o " + shell_quote(out.string()) +
                              " 2>&1 >/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) {
    std::perror("popen");
    return 1;
  }
  std::string err;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe)) err += buffer;
  const int status = pclose(pipe);

  int failures = 0;
  if (!WIFEXITED(status)) {
    std::cerr << "FAIL: dlcarbon did not exit normally (signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : -1)
              << ")\n";
    ++failures;
  } else if (WEXITSTATUS(status) != 2) {
    std::cerr << "FAIL: exit code " << WEXITSTATUS(status) << ", expected 2\n";
    ++failures;
  }
  if (err != expected + "\n") {
    std::cerr << "FAIL: message differs\n  expected: " << expected << "\n  got:      " << err;
    ++failures;
  }
  if (fs::exists(out)) {
    std::cerr << "FAIL: an output file was written: " << out << "\n";
    ++failures;
  }
  for (const auto& e : fs::directory_iterator(out_dir)) {
    if (e.path().filename().string().rfind(out.filename().string() + ".tmp", 0) == 0) {
      std::cerr << "FAIL: a temporary file was left: " << e.path() << "\n";
      ++failures;
    }
  }
  if (failures == 0) std::cout << "ok: " << expected << "\n";
  return failures == 0 ? 0 : 1;
}
