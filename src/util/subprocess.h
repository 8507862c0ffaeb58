// Running a helper program to its end: its arguments and environment, a text on its stdin, its
// stdout and stderr captured, a deadline. For programs that speak a protocol over their standard
// streams (CNI plugins: the network configuration in, the result or an error object out).
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace cidrun {

struct ProgramRun {
  std::string path;               // the executable, run as it is (no PATH search)
  std::vector<std::string> args;  // argv, argv[0] included
  std::vector<std::string> env;   // the whole environment, NAME=VALUE each
  std::string input;              // written to its stdin, which then reaches end-of-file
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
};

struct ProgramResult {
  int exit_code = 0;  // 128+N when killed by signal N
  std::string out;
  std::string err;
};

// Runs the program with no signal blocked and default dispositions, and waits for it. Throws
// cidrun::Error when it cannot be started or outlives the timeout (it is killed then); a
// non-zero exit is a result, not an error.
ProgramResult run_program(const ProgramRun& run);

// This process's environment with the entries named in `replace` (NAME=VALUE) put in place of
// any of the same name.
std::vector<std::string> environment_with(const std::vector<std::string>& replace);

}  // namespace cidrun
