// Runs one validated Invocation against a worker: builds the wire message, sends
// it through a Client, renders the answer and returns the process exit code
// (args.h ExitCode). Transport failures exit 3, server errors 1.
#pragma once

#include <iosfwd>

#include "args.h"

namespace aion::cli {

int Run(const Invocation& inv, std::ostream& out, std::ostream& err);

}  // namespace aion::cli
