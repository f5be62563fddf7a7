#include "aion/engine/registry.h"

#include "aion/engine/activity.h"
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

Status ActivityRegistry::Add(std::string type, ActivityFn fn) {
  AION_RETURN_IF_ERROR(ValidateName("activity type", type));
  if (!fn) return InvalidArgument("activity '" + type + "' has no body");
  if (activities_.count(type) != 0) {
    return InvalidArgument("activity type '" + type + "' is already registered");
  }
  activities_.emplace(std::move(type), std::move(fn));
  return Status::Ok();
}

const ActivityFn* ActivityRegistry::Find(std::string_view type) const {
  auto it = activities_.find(type);
  return it == activities_.end() ? nullptr : &it->second;
}

std::vector<std::string> ActivityRegistry::Types() const {
  std::vector<std::string> out;
  for (const auto& [type, fn] : activities_) out.push_back(type);
  return out;
}

}  // namespace aion
