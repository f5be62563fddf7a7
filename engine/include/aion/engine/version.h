// The version of Aion this program was built from: CMake's project(VERSION),
// e.g. "0.1.0". Printed by --version, reported in aion.api.list replies and
// recorded in WorkflowStarted. Any thread may call it.
#pragma once

#include <string_view>

namespace aion {

std::string_view Version();

}  // namespace aion
