// aion: the command-line client of Aion (DESIGN §5). Usage: aion --help.
#include <iostream>

#include "args.h"
#include "commands.h"
#include "render.h"

int main(int argc, char** argv) {
  aion::cli::Invocation inv;
  if (auto rc = aion::cli::ParseCommandLine(argc, argv, inv)) return *rc;
  if (aion::Status st = aion::cli::Validate(inv); !st.ok()) {
    aion::cli::Renderer(inv.json, std::cout, std::cerr).LocalError(st);
    return aion::cli::kExitUsage;
  }
  const int rc = aion::cli::Run(inv, std::cout, std::cerr);
  std::cout.flush();
  return rc;
}
