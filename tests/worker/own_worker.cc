// own-worker: a team's own worker binary as a user writes it (issue 11): its
// own workflow and local activity, then aion::worker::Main. For the startup
// error tests, OWN_WORKER_REGISTRATION=duplicate registers `greet` twice and
// =none registers nothing.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>

#include "aion/worker/main.h"

namespace {

std::string Shout(aion::ActivityContext&, std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return text;
}

aion::Task<aion::Json> Greet(aion::Context& ctx, aion::Json input) {
  // Named values, not temporaries, in co_await expressions (engine/README.md).
  const std::string name = input.value("name", "nobody");
  std::string loud = co_await ctx.activity<std::string>("shout", name);
  aion::Json result;
  result["greeting"] = "hello " + loud;
  co_return result;
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode_env = std::getenv("OWN_WORKER_REGISTRATION");
  const std::string mode = mode_env == nullptr ? "" : mode_env;
  aion::worker::Registries registries;
  if (mode != "none") {
    (void)registries.workflows.workflow("greet", &Greet);
    (void)registries.activities.activity("shout", &Shout);
  }
  if (mode == "duplicate") (void)registries.workflows.workflow("greet", &Greet);
  return aion::worker::Main(argc, argv, registries);
}
