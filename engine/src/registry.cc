#include "aion/engine/registry.h"

#include "aion/engine/ids.h"

namespace aion {

Status WorkflowRegistry::Add(WorkflowDefinition definition) {
  AION_RETURN_IF_ERROR(ValidateName("workflow type", definition.type));
  if (!definition.run) return InvalidArgument("workflow '" + definition.type + "' has no body");
  if (definitions_.count(definition.type) != 0) {
    return InvalidArgument("workflow type '" + definition.type + "' is already registered");
  }
  std::string type = definition.type;
  definitions_.emplace(std::move(type), std::move(definition));
  return Status::Ok();
}

const WorkflowDefinition* WorkflowRegistry::Find(std::string_view type) const {
  auto it = definitions_.find(type);
  return it == definitions_.end() ? nullptr : &it->second;
}

std::vector<std::string> WorkflowRegistry::Types() const {
  std::vector<std::string> out;
  for (const auto& [type, def] : definitions_) out.push_back(type);
  return out;
}

}  // namespace aion
