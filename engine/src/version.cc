#include "aion/engine/version.h"

namespace aion {

// AION_VERSION_STRING is set from CMake's PROJECT_VERSION (engine/CMakeLists.txt).
std::string_view Version() { return AION_VERSION_STRING; }

}  // namespace aion
