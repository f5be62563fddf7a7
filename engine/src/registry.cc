#include "aion/engine/registry.h"

#include "aion/engine/activity.h"
#include "aion/engine/ids.h"
#include "type_name.h"

namespace aion {

Status WorkflowRegistry::Add(WorkflowDefinition definition) {
  Status added = Insert(std::move(definition));
  if (!added.ok() && first_error_.ok()) first_error_ = added;
  return added;
}

Status WorkflowRegistry::Insert(WorkflowDefinition definition) {
  AION_RETURN_IF_ERROR(ValidateName("workflow type", definition.type));
  if (!definition.run) return InvalidArgument("workflow '" + definition.type + "' has no body");
  if (definition.options.version.empty()) {
    return InvalidArgument("workflow '" + definition.type + "' has an empty code version");
  }
  auto& versions = definitions_[definition.type];
  const std::string version = definition.options.version;
  if (versions.by_version.count(version) != 0) {
    return InvalidArgument("workflow type '" + definition.type + "' version '" + version +
                           "' is already registered");
  }
  const bool current = definition.options.current;
  if (versions.current.empty() || current ||
      !versions.by_version.at(versions.current).options.current) {
    versions.current = version;
  }
  versions.by_version.emplace(version, std::move(definition));
  return Status::Ok();
}

const WorkflowDefinition* WorkflowRegistry::Find(std::string_view type) const {
  auto it = definitions_.find(type);
  return it == definitions_.end() ? nullptr : &it->second.by_version.at(it->second.current);
}

const WorkflowDefinition* WorkflowRegistry::Find(std::string_view type,
                                                 std::string_view version) const {
  auto it = definitions_.find(type);
  if (it == definitions_.end()) return nullptr;
  auto v = it->second.by_version.find(version);
  return v == it->second.by_version.end() ? nullptr : &v->second;
}

std::string WorkflowRegistry::Versions(std::string_view type) const {
  std::string out;
  auto it = definitions_.find(type);
  if (it == definitions_.end()) return out;
  for (const auto& [v, def] : it->second.by_version) out += (out.empty() ? "'" : ", '") + v + "'";
  return out;
}

std::vector<std::string> WorkflowRegistry::Types() const {
  std::vector<std::string> out;
  for (const auto& [type, versions] : definitions_) out.push_back(type);
  return out;
}

Status ActivityRegistry::Add(std::string type, ActivityFn fn) {
  Status added = Insert(std::move(type), std::move(fn));
  if (!added.ok() && first_error_.ok()) first_error_ = added;
  return added;
}

Status ActivityRegistry::Insert(std::string type, ActivityFn fn) {
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

bool RunActivityAttempt(const ActivityFn& fn, ActivityContext& ctx, const Payload& input,
                        Payload* output, history::ActivityFailure* failure) {
  auto fail = [failure](const std::string& message, const std::string& type, bool non_retryable) {
    failure->set_message(message);
    failure->set_error_type(type);
    failure->set_non_retryable(non_retryable);
    return false;
  };
  try {
    *output = fn(ctx, input);
    return true;
  } catch (const ActivityError& e) {
    return fail(e.what(), e.type(), e.non_retryable());
  } catch (const std::exception& e) {
    return fail(e.what(), TypeNameOf(e), false);
  } catch (...) {
    return fail("activity threw a non-std exception", "unknown", false);
  }
}

}  // namespace aion
