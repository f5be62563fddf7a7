// Starting and reaping child processes in tests: fork+exec with stdout and
// stderr appended to files, waits with a timeout, readable wait statuses.
// POSIX only (no aion libraries), so tests that do not link the engine can
// compile child_process.cc directly. Safe to call from any thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace aion::testing {

// fork + exec of args[0] (a path) with `args`; stdin from /dev/null, stdout
// and stderr to `out_fd` / `err_fd` (the caller keeps and closes them). The
// child dies with the parent when `die_with_parent`. Returns the pid or -1.
pid_t SpawnChild(const std::vector<std::string>& args, int out_fd, int err_fd,
                 bool die_with_parent = true);

// Waits for `pid` up to `timeout`; true and `*ws` set if it ended (0 if it
// was not our child any more).
bool WaitPid(pid_t pid, std::chrono::milliseconds timeout, int* ws);

// "exit code N", "signal N" or "wait status N".
std::string DescribeWaitStatus(int ws);

// The whole file ("" if it cannot be read).
std::string ReadFile(const std::filesystem::path& path);

}  // namespace aion::testing
