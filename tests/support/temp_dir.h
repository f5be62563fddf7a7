// TempDir: a fresh directory under $TMPDIR, removed with its contents when
// the object dies. Not thread-safe; one owner.
#pragma once

#include <filesystem>
#include <string>

namespace aion::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "aion-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace aion::testing
