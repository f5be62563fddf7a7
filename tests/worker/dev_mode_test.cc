// `aion-worker --dev` as a user runs it: it starts its own nats-server,
// prints the URL, runs workflows, and SIGTERM stops both cleanly (exit 0).
#define BOOST_TEST_MODULE dev_mode
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "support/nats_test_server.h"
#include "support/temp_dir.h"
#include "support/worker_process.h"

namespace aion::testing {
namespace {

using namespace std::chrono_literals;

// One `aion-worker --dev` child with its stdout on a pipe.
class DevWorker {
 public:
  explicit DevWorker(const std::filesystem::path& data) {
    const char* bin = std::getenv("AION_BIN_DIR");
    BOOST_REQUIRE_MESSAGE(bin != nullptr, "AION_BIN_DIR is not set (run through ctest)");
    std::string exe = std::string(bin) + "/aion-worker", data_arg = data.string();
    std::vector<char*> argv = {exe.data(), const_cast<char*>("--dev"), const_cast<char*>("--data"),
                               data_arg.data(), nullptr};
    int fds[2];
    BOOST_REQUIRE(pipe(fds) == 0);
    const pid_t parent = getpid();
    pid_ = fork();
    BOOST_REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(126);
      dup2(fds[1], 1);
      close(fds[0]);
      close(fds[1]);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    out_ = fdopen(fds[0], "r");
  }
  ~DevWorker() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_ != nullptr) fclose(out_);
  }

  // Reads stdout until the "export AION_NATS_URL=" line; returns the URL.
  std::string AwaitUrl() {
    char line[1024];
    while (fgets(line, sizeof line, out_) != nullptr) {
      std::string text(line);
      const std::string key = "export AION_NATS_URL=";
      if (auto at = text.find(key); at != std::string::npos) {
        return text.substr(at + key.size(), text.find_last_not_of("\n") - at - key.size() + 1);
      }
    }
    return "";
  }

  // SIGTERM and the exit status (-1 if it did not exit within 30 s).
  int Terminate() {
    kill(pid_, SIGTERM);
    for (int i = 0; i < 3000; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(10ms);
    }
    return -1;
  }

 private:
  pid_t pid_ = 0;
  FILE* out_ = nullptr;
};

BOOST_AUTO_TEST_CASE(dev_mode_runs_its_own_nats_server_and_stops_cleanly) {
  TempDir dir("aion-dev");
  DevWorker worker(dir.path() / "data");
  const std::string url = worker.AwaitUrl();
  BOOST_REQUIRE_MESSAGE(url.rfind("nats://127.0.0.1:", 0) == 0, "no URL printed: '" << url << "'");
  BOOST_TEST(url != "nats://127.0.0.1:4222");

  bus::NatsConnectionOptions options;
  options.url = url;
  options.max_reconnect = 0;
  auto conn = bus::NatsConnection::Connect(options);
  BOOST_REQUIRE_MESSAGE(conn.ok(), conn.status().ToString());
  NatsCollector replies(**conn, "test.replies");
  bus::Headers headers = kJsonHeaders;
  headers["Aion-Reply-To"] = "test.replies";
  // The worker may still be creating the streams: retry the first publish.
  bool published = false;
  for (int i = 0; i < 100 && !published; ++i) {
    try {
      JsPublish(**conn, "aion.wf.dev-1.start", R"({"workflow_type":"noop","input":"hi"})", headers);
      published = true;
    } catch (const std::exception&) {
      std::this_thread::sleep_for(50ms);
    }
  }
  BOOST_REQUIRE(published);
  auto started = replies.Next(20s);  // recorded: `result` now knows the id
  BOOST_REQUIRE(started != nullptr);
  BOOST_TEST(!Json::parse(Body(started.get())).contains("error"));
  Json result = Json::parse(Request(**conn, "aion.req.dev-1.result", "", true, 20s));
  BOOST_TEST(result["status"] == "completed");
  BOOST_TEST(result["output"] == "hi");

  // A second dev worker on the same data dir starts no second nats-server on
  // the same JetStream store: it is refused, and the first goes on.
  const std::string data = (dir.path() / "data").string();
  ProcessResult second =
      RunProcess({BinaryPath("aion-worker").string(), "--dev", "--data", data}, 30s);
  BOOST_TEST(second.exit_code == 1);
  BOOST_TEST(second.err.find("aion-worker: cannot start nats-server: '" + data +
                             "/nats' is in use by another process") != std::string::npos,
             second.err);
  result = Json::parse(Request(**conn, "aion.req.dev-1.result", "", true, 20s));
  BOOST_TEST(result["status"] == "completed");

  BOOST_TEST(worker.Terminate() == 0);
  BOOST_TEST(std::filesystem::exists(dir.path() / "data" / "lmdb"));
  BOOST_TEST(std::filesystem::exists(dir.path() / "data" / "nats" / "jetstream"));
  options.connect_timeout = 500ms;
  auto after = bus::NatsConnection::Connect(options);
  BOOST_TEST((after.status().code() == StatusCode::kUnavailable));  // its nats-server is gone
}

}  // namespace
}  // namespace aion::testing
