#include "data_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace aion::worker {
namespace {

// The pid written by the holder, or "" if none can be read.
std::string HolderPid(int fd) {
  char buf[32] = {};
  const ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return "";
  std::string text(buf, static_cast<std::size_t>(n));
  text = text.substr(0, text.find_first_not_of("0123456789"));
  return text;
}

void RecordPid(int fd) {
  const std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) != 0) return;  // the pid is informative only
  (void)!pwrite(fd, pid.data(), pid.size(), 0);
}

}  // namespace

Result<std::unique_ptr<DataDirLock>> DataDirLock::Acquire(const std::filesystem::path& dir) {
  const std::filesystem::path file = dir / "LOCK";
  const int fd = open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return InvalidArgument("cannot use data dir '" + dir.string() + "': cannot open " +
                           file.string() + ": " + std::strerror(errno));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const std::string pid = HolderPid(fd);
    close(fd);
    if (err != EWOULDBLOCK) {
      return InvalidArgument("cannot lock " + file.string() + ": " + std::strerror(err));
    }
    return Unavailable("data dir '" + dir.string() + "' is in use by another aion-worker" +
                       (pid.empty() ? std::string() : " (pid " + pid + ")") +
                       ": it holds the lock on " + file.string() +
                       "; one data dir serves one worker (give this one its own --data)");
  }
  RecordPid(fd);
  return std::unique_ptr<DataDirLock>(new DataDirLock(fd));
}

DataDirLock::~DataDirLock() {
  if (fd_ >= 0) close(fd_);
}

}  // namespace aion::worker
