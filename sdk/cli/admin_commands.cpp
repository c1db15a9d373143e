#include "admin_commands.hpp"

#include "bounded_json.hpp"
#include "output.hpp"
#include "secret_file.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>
#include <memory>

namespace bai::cli {
namespace {

using Json = nlohmann::json;

// Runs `call` against the client and prints its result as JSON or with `print`.
template <class Call, class Print>
int show(CommandContext& context, Call call, Print print) {
  const client::Client* api = context.api();
  if (api == nullptr) return kExitUsage;
  auto result = call(*api);
  if (!result) return context.fail(result.error());
  if (context.json) {
    if constexpr (requires { result->json; }) {
      std::cout << result->json << "\n";
    } else {
      std::cout << jsonArray(*result) << "\n";
    }
  } else {
    print(*result);
  }
  return kExitOk;
}

// Registers `command`'s callback to run `body` once parsing is done.
template <class Body>
void onRun(CLI::App* command, CommandContext& context, Body body) {
  command->callback([&context, body] { context.action = [&context, body] { return body(context); }; });
}

std::string slotCell(const client::SlotUsage& usage, Quantity amount) { return client::formatSlotAmount(usage.type, amount); }

void printAgents(const std::vector<client::AgentInfo>& agents) {
  Table table({"AGENT", "STATUS", "GROUP", "SLOT", "OCCUPIED", "AVAILABLE", "CAPACITY", "LARGEST FREE"});
  for (const auto& agent : agents) {
    bool first = true;
    for (const auto& [slot, usage] : agent.slots) {
      table.add({first ? agent.id : "", first ? agent.status : "", first ? agent.scalingGroup : "", slot,
                 slotCell(usage, usage.used), slotCell(usage, usage.available()), slotCell(usage, usage.capacity),
                 slotCell(usage, usage.largestAllocatable)});
      first = false;
    }
    if (first) table.add({agent.id, agent.status, agent.scalingGroup, "-", "", "", "", ""});
  }
  table.print(std::cout);
}

// "acme: health did not return within 5000 ms, ..." for the plugins the agent reports
// withdrawn; "-" when none is.
std::string withdrawnPlugins(const std::string& pluginsJson) {
  const Json plugins = Json::parse(pluginsJson, nullptr, false);
  std::string out;
  if (!plugins.is_array()) return "-";
  for (const auto& plugin : plugins) {
    if (!plugin.is_object() || !plugin.contains("withdrawn") || !plugin["withdrawn"].is_string()) continue;
    out += (out.empty() ? "" : ", ") + plugin.value("name", "?") + ": " + plugin["withdrawn"].get<std::string>();
  }
  return out.empty() ? "-" : out;
}

// "process, container (unavailable: engine down)".
std::string runtimesCell(const std::vector<client::RuntimeInfo>& runtimes) {
  std::string out;
  for (const auto& runtime : runtimes) {
    out += (out.empty() ? "" : ", ") + runtime.kind;
    if (!runtime.available) out += " (unavailable" + (runtime.reason.empty() ? "" : ": " + runtime.reason) + ")";
  }
  return out.empty() ? "-" : out;
}

void printAgent(const client::AgentInfo& agent) {
  Table facts({"FIELD", "VALUE"});
  facts.add({"id", agent.id});
  facts.add({"status", agent.status});
  facts.add({"scaling group", agent.scalingGroup});
  facts.add({"region", agent.region});
  facts.add({"rpc url", agent.rpcUrl});
  facts.add({"architecture", agent.architecture});
  facts.add({"version", agent.version});
  facts.add({"last heartbeat", formatDuration(static_cast<std::int64_t>(agent.secondsSinceHeartbeat * 1000)) + " ago"});
  facts.add({"plugins", agent.pluginsJson});
  facts.add({"withdrawn plugins", withdrawnPlugins(agent.pluginsJson)});
  facts.add({"device health", agent.deviceHealthJson});
  facts.add({"runtimes", runtimesCell(agent.runtimes)});
  facts.add({"images", std::to_string(agent.imageCount)});
  facts.print(std::cout);
  std::cout << "\n";
  printAgents({agent});
}

void printAllocationMap(const client::AllocationMap& map) {
  Table table({"SLOT", "KIND", "DEVICE", "NUMA", "CAPACITY", "ALLOCATED", "ENABLED", "SESSIONS"});
  for (const auto& slot : map.maps) {
    for (const auto& device : slot.devices) {
      std::string holders;
      for (const auto& [session, amount] : device.sessions) {
        holders += (holders.empty() ? "" : " ") + session + ":" + client::formatSlotAmount(slot.type, amount);
      }
      table.add({slot.slot, slot.kind, device.id, device.numaNode < 0 ? "-" : std::to_string(device.numaNode),
                 client::formatSlotAmount(slot.type, device.capacity), client::formatSlotAmount(slot.type, device.allocated),
                 device.enabled ? "yes" : "no", holders.empty() ? "-" : holders});
    }
  }
  table.print(std::cout);
}

void printKeypairs(const std::vector<client::Keypair>& keypairs) {
  Table table({"ACCESS KEY", "ADMIN", "ACTIVE", "UID", "GID", "RESOURCE POLICY", "CREATED"});
  const auto id = [](std::int64_t value) { return value == 0 ? std::string("-") : std::to_string(value); };
  for (const auto& key : keypairs) {
    table.add({key.accessKey, key.admin ? "yes" : "no", key.active ? "yes" : "no", id(key.uid), id(key.gid),
               key.resourcePolicy.empty() ? "-" : key.resourcePolicy, formatAge(key.createdAtMs)});
  }
  table.print(std::cout);
}

void printPolicies(const std::vector<client::ResourcePolicy>& policies, CommandContext& context) {
  Table table({"NAME", "LIMITS", "UNLISTED SLOTS", "MAX SESSIONS", "MAX PENDING", "MAX VFOLDERS", "MAX VFOLDER SIZE"});
  for (const auto& policy : policies) {
    const auto count = [](int n) { return n == 0 ? std::string("-") : std::to_string(n); };
    std::string limits = formatResources(policy.totalResourceSlots, context.slotTypes());
    table.add({policy.name, limits.empty() ? "-" : limits, policy.defaultForUnspecified, count(policy.maxConcurrentSessions),
               count(policy.maxPendingSessionCount),
               policy.maxVfolderCount == 0 ? "-" : std::to_string(policy.maxVfolderCount),
               policy.maxVfolderSize == 0 ? "-" : BinarySize(policy.maxVfolderSize).toString()});
  }
  table.print(std::cout);
}

void printGroups(const std::vector<client::ScalingGroup>& groups) {
  Table table({"NAME", "ACTIVE", "SEQUENCER", "SELECTOR", "SLOT PRIORITY", "OPTIONS", "PULL POLICY", "ALLOWED IMAGES",
               "DESCRIPTION"});
  for (const auto& group : groups) {
    std::string priority, allowed;
    for (const auto& slot : group.slotPriority) priority += (priority.empty() ? "" : ",") + slot;
    for (const auto& pattern : group.allowedImages) allowed += (allowed.empty() ? "" : ",") + pattern;
    table.add({group.name, group.active ? "yes" : "no", group.sequencer, group.selector, priority.empty() ? "-" : priority,
               group.optionsJson, group.imagePullPolicy, allowed.empty() ? "(any)" : allowed, group.description});
  }
  table.print(std::cout);
}

// An image id as engines print it: 12 hex digits, without "sha256:".
std::string shortImageId(const std::string& id) {
  const std::string hex = id.rfind("sha256:", 0) == 0 ? id.substr(7) : id;
  return hex.substr(0, 12);
}

void printImages(const std::vector<client::AgentImages>& agents) {
  Table table({"AGENT", "IMAGE", "ID", "SIZE"});
  for (const auto& agent : agents) {
    for (const auto& image : agent.images) {
      auto size = Quantity::parse(std::to_string(image.sizeBytes));
      table.add({agent.agentId, image.name, shortImageId(image.id),
                 size ? client::formatSlotAmount("bytes", *size) : std::to_string(image.sizeBytes)});
    }
  }
  table.print(std::cout);
}

// The fields a policy command sets; only those given are sent.
struct PolicyFields {
  std::vector<std::string> limits;  // SLOT=AMOUNT
  std::string unlisted;             // limited | unlimited
  std::optional<int> maxSessions;
  std::optional<int> maxPending;
  std::optional<std::uint64_t> maxVfolderCount;
  std::optional<std::string> maxVfolderSize;  // "10g" or bytes
};

void addPolicyFields(CLI::App* command, PolicyFields& fields) {
  command->add_option("-l,--limit", fields.limits, "SLOT=AMOUNT total the keypair may hold, repeatable (Infinity: none)")
      ->allow_extra_args(false);
  command->add_option("--unlisted", fields.unlisted, "slots without a limit are 'limited' (to 0) or 'unlimited'")
      ->check(CLI::IsMember({"limited", "unlimited"}));
  command->add_option("--max-sessions", fields.maxSessions, "concurrent sessions (0: no limit)");
  command->add_option("--max-pending", fields.maxPending, "pending sessions (0: no limit)");
  command->add_option("--max-vfolder-count", fields.maxVfolderCount, "virtual folders a keypair may own (0: no limit)");
  command->add_option("--max-vfolder-size", fields.maxVfolderSize,
                      "the largest quota of one virtual folder, e.g. 10g (0: no limit; also the quota of one made without)");
}

Result<Json> policyBody(const PolicyFields& fields) {
  Json doc = Json::object();
  if (!fields.limits.empty()) {
    Json limits = Json::object();
    for (const std::string& text : fields.limits) {
      const auto equals = text.find('=');
      if (equals == 0 || equals == std::string::npos || equals + 1 == text.size()) {
        return fail(ErrorCode::InvalidArgument, "--limit takes SLOT=AMOUNT, not '" + text + "'");
      }
      limits[text.substr(0, equals)] = text.substr(equals + 1);
    }
    doc["total_resource_slots"] = limits;
  }
  if (!fields.unlisted.empty()) doc["default_for_unspecified"] = fields.unlisted == "unlimited" ? "UNLIMITED" : "LIMITED";
  if (fields.maxSessions) doc["max_concurrent_sessions"] = *fields.maxSessions;
  if (fields.maxPending) doc["max_pending_session_count"] = *fields.maxPending;
  if (fields.maxVfolderCount) doc["max_vfolder_count"] = *fields.maxVfolderCount;
  if (fields.maxVfolderSize) {
    auto size = BinarySize::parse(*fields.maxVfolderSize);
    if (!size) return fail(ErrorCode::InvalidArgument, "--max-vfolder-size: " + size.error().message);
    doc["max_vfolder_size"] = size->bytes();
  }
  return doc;
}

struct GroupFields {
  std::optional<std::string> description;
  std::optional<std::string> sequencer;
  std::optional<std::string> selector;
  std::optional<std::string> optionsJson;
  std::vector<std::string> slotPriority;
  std::optional<int> holMaxPasses;
  std::optional<std::int64_t> holMaxWaitMs;
  std::optional<bool> active;
  std::optional<std::string> pullPolicy;
  std::vector<std::string> allowedImages;
  CLI::Option* allowedImagesOption = nullptr;  // given at all: CLI11 drops the '' that clears
};

void addGroupFields(CLI::App* command, GroupFields& fields) {
  command->add_option("--description", fields.description, "free text");
  command->add_option("--sequencer", fields.sequencer, "the policy that orders pending sessions (fifo, lifo, drf, ...)");
  command->add_option("--selector", fields.selector, "the policy that picks an agent (concentrated, dispersed, roundrobin, ...)");
  command->add_option("--options", fields.optionsJson, R"(policy options as JSON, e.g. '{"selector":{"prefer_shared":true}}')");
  command->add_option("--slot-priority", fields.slotPriority, "slots compared first when packing, e.g. cuda.device,cpu,mem")
      ->delimiter(',');
  command->add_option("--hol-max-passes", fields.holMaxPasses, "head-of-line: passes a blocked session may be overtaken");
  command->add_option("--hol-max-wait-ms", fields.holMaxWaitMs, "head-of-line: how long it may be overtaken");
  command->add_option("--active", fields.active, "true or false: whether sessions are placed in this group");
  command->add_option("--pull-policy", fields.pullPolicy, "what agents do when a session's image is missing")
      ->check(CLI::IsMember({"never", "if-missing", "always"}));
  fields.allowedImagesOption = command->add_option("--allowed-image", fields.allowedImages,
                      "an image pattern sessions may use ('*' for any run: 'bai-test/*'), repeatable; '' clears the "
                      "list (every image allowed)")
      ->allow_extra_args(false);
}

Result<Json> groupBody(const GroupFields& fields) {
  Json doc = Json::object();
  if (fields.description) doc["description"] = *fields.description;
  if (fields.sequencer) doc["sequencer"] = *fields.sequencer;
  if (fields.selector) doc["selector"] = *fields.selector;
  if (fields.optionsJson) {
    internal::BoundedJson options = internal::parseBoundedJson(*fields.optionsJson);
    if (!options) return fail(ErrorCode::InvalidArgument, "--options: " + options.error);
    if (!options.document.is_object()) return fail(ErrorCode::InvalidArgument, "--options must be a JSON object, not '" + *fields.optionsJson + "'");
    doc["options"] = std::move(options.document);
  }
  if (!fields.slotPriority.empty()) doc["slot_priority"] = fields.slotPriority;
  if (fields.holMaxPasses) doc["hol_max_passes"] = *fields.holMaxPasses;
  if (fields.holMaxWaitMs) doc["hol_max_wait_ms"] = *fields.holMaxWaitMs;
  if (fields.active) doc["active"] = *fields.active;
  if (fields.pullPolicy) doc["image_pull_policy"] = *fields.pullPolicy;
  if (fields.allowedImagesOption != nullptr && fields.allowedImagesOption->count() > 0) {
    const auto& patterns = fields.allowedImages;
    const bool clears = std::find(patterns.begin(), patterns.end(), "") != patterns.end() ||
                        patterns.size() < fields.allowedImagesOption->count();
    if (clears && !(patterns.empty() || (patterns.size() == 1 && patterns[0].empty()))) {
      return fail(ErrorCode::InvalidArgument, "--allowed-image '' clears the list: give it alone, without patterns");
    }
    doc["allowed_images"] = clears ? Json::array() : Json(patterns);
  }
  return doc;
}

void addAgentCommands(CLI::App* admin, CommandContext& context) {
  CLI::App* agent = admin->add_subcommand("agent", "the cluster's agents")->require_subcommand(1);
  onRun(agent->add_subcommand("list", "every agent with occupied and available amounts per slot"), context,
        [](CommandContext& c) { return show(c, [](auto& api) { return api.agents(); }, printAgents); });

  auto id = std::make_shared<std::string>();
  CLI::App* info = agent->add_subcommand("info", "one agent: status, plugins, device health and slots");
  info->add_option("agent", *id, "agent id")->required();
  onRun(info, context, [id](CommandContext& c) { return show(c, [id](auto& api) { return api.agent(*id); }, printAgent); });

  auto mapId = std::make_shared<std::string>();
  CLI::App* allocMap = agent->add_subcommand("alloc-map", "an agent's devices and which sessions hold how much of each");
  allocMap->add_option("agent", *mapId, "agent id")->required();
  onRun(allocMap, context, [mapId](CommandContext& c) {
    return show(c, [mapId](auto& api) { return api.allocationMap(*mapId); }, printAllocationMap);
  });

  auto imagesId = std::make_shared<std::string>();
  CLI::App* images = agent->add_subcommand("images", "have an agent read its container engine again, and list its images");
  images->add_option("agent", *imagesId, "agent id")->required();
  onRun(images, context, [imagesId](CommandContext& c) {
    return show(c, [imagesId](auto& api) { return api.refreshAgentImages(*imagesId); },
                [](const client::AgentImages& agent) {
                  std::cout << "runtimes: " << runtimesCell(agent.runtimes) << "\n";
                  printImages({agent});
                });
  });
}

void addImageCommands(CLI::App* admin, CommandContext& context) {
  CLI::App* image = admin->add_subcommand("image", "the images agents' container engines have")->require_subcommand(1);
  auto agentId = std::make_shared<std::string>();
  CLI::App* list = image->add_subcommand("list", "images per agent, as agents last reported them");
  list->add_option("--agent", *agentId, "only this agent's");
  onRun(list, context, [agentId](CommandContext& c) {
    return show(c, [agentId](auto& api) { return api.images(*agentId); }, printImages);
  });
}

void addKeypairCommands(CLI::App* admin, CommandContext& context) {
  CLI::App* keypair = admin->add_subcommand("keypair", "API keypairs")->require_subcommand(1);
  onRun(keypair->add_subcommand("list", "every keypair (never the secrets)"), context,
        [](CommandContext& c) { return show(c, [](auto& api) { return api.keypairs(); }, printKeypairs); });
  auto infoKey = std::make_shared<std::string>();
  CLI::App* info = keypair->add_subcommand("info", "one keypair: its uid/gid, policy and state (never the secret)");
  info->add_option("access-key", *infoKey, "access key")->required();
  onRun(info, context, [infoKey](CommandContext& c) {
    return show(c, [infoKey](auto& api) { return api.keypair(*infoKey); }, [](const client::Keypair& key) { printKeypairs({key}); });
  });

  struct CreateOptions {
    bool admin = false;
    std::string policy;
    std::string out;
    client::KeypairIds ids;
  };
  auto options = std::make_shared<CreateOptions>();
  CLI::App* create = keypair->add_subcommand("create", "a new keypair; its secret is shown once");
  create->add_flag("--admin", options->admin, "may use the admin commands");
  create->add_option("--resource-policy", options->policy, "the resource policy that limits it");
  create->add_option("--uid", options->ids.uid,
                     "uid its sessions run as (default: the lowest free one of the manager's identity.session-uid-range)");
  create->add_option("--gid", options->ids.gid, "gid its sessions run as (default: the manager's identity.session-gid)");
  create->add_option("--out", options->out,
                     "write the keypair to this new file (mode 0600; usable as BAI_CONFIG) instead of printing the secret");
  onRun(create, context, [options](CommandContext& c) {
    const client::Client* api = c.api();
    if (api == nullptr) return kExitUsage;
    auto created = api->createKeypair(options->admin, options->policy, options->ids);
    if (!created) return c.fail(created.error());
    if (!options->out.empty()) {
      const std::string content = "# bai keypair" + std::string(created->admin ? " (admin)" : "") +
                                  "\nendpoint = \"" + api->config().endpoint + "\"\naccess-key = \"" + created->accessKey +
                                  "\"\nsecret-key = \"" + created->secretKey + "\"\n";
      if (auto written = writeSecretFile(options->out, content); !written) {
        return c.usage("the keypair " + created->accessKey + " was created but not written: " + written.error().message);
      }
      std::cout << created->accessKey << " written to " << options->out << "\n";
      return kExitOk;
    }
    if (c.json) {
      std::cout << created->json << "\n";
    } else {
      std::cout << "access-key = \"" << created->accessKey << "\"\nsecret-key = \"" << created->secretKey << "\"\n";
      std::cerr << "bai: its sessions run as uid " << created->uid << ", gid " << created->gid << "\n";
      std::cerr << "bai: the secret key is shown only this once\n";
    }
    return kExitOk;
  });

  auto change = std::make_shared<std::pair<std::string, std::string>>();
  CLI::App* setPolicy = keypair->add_subcommand("set-policy", "set (or with \"\" remove) a keypair's resource policy");
  setPolicy->add_option("access-key", change->first, "access key")->required();
  setPolicy->add_option("policy", change->second, "resource policy name, \"\" for none")->required();
  onRun(setPolicy, context, [change](CommandContext& c) {
    return show(c, [change](auto& api) { return api.setKeypairResourcePolicy(change->first, change->second); },
                [](const client::Keypair& key) { printKeypairs({key}); });
  });

  struct IdentityChange {
    std::string accessKey;
    client::KeypairIds ids;
  };
  auto identity = std::make_shared<IdentityChange>();
  CLI::App* setUid = keypair->add_subcommand("set-uid", "change the uid (and gid) a keypair's sessions run as, from its next session");
  setUid->add_option("access-key", identity->accessKey, "access key")->required();
  setUid->add_option("--uid", identity->ids.uid, "the new uid, 1 to 4294967294, in the range or not (an LDAP uid)")->required();
  setUid->add_option("--gid", identity->ids.gid, "the new gid (default: the manager's identity.session-gid for the uid)");
  onRun(setUid, context, [identity](CommandContext& c) {
    return show(c, [identity](auto& api) { return api.setKeypairIdentity(identity->accessKey, identity->ids); },
                [](const client::Keypair& key) { printKeypairs({key}); });
  });
}

void addPolicyCommands(CLI::App* admin, CommandContext& context) {
  CLI::App* policy = admin->add_subcommand("policy", "resource policies: what a keypair may hold and queue")->require_subcommand(1);
  onRun(policy->add_subcommand("list", "every resource policy"), context, [](CommandContext& c) {
    return show(c, [](auto& api) { return api.resourcePolicies(); },
                [&c](const std::vector<client::ResourcePolicy>& policies) { printPolicies(policies, c); });
  });

  auto name = std::make_shared<std::string>();
  CLI::App* info = policy->add_subcommand("info", "one resource policy");
  info->add_option("name", *name, "policy name")->required();
  onRun(info, context, [name](CommandContext& c) {
    return show(c, [name](auto& api) { return api.resourcePolicy(*name); },
                [&c](const client::ResourcePolicy& p) { printPolicies({p}, c); });
  });

  for (const bool creating : {true, false}) {
    auto target = std::make_shared<std::string>();
    auto fields = std::make_shared<PolicyFields>();
    CLI::App* command = policy->add_subcommand(creating ? "create" : "update",
                                               creating ? "a new resource policy" : "change the fields given");
    command->add_option("name", *target, "policy name")->required();
    addPolicyFields(command, *fields);
    onRun(command, context, [creating, target, fields](CommandContext& c) {
      auto body = policyBody(*fields);
      if (!body) return c.usage(body.error().message);
      if (creating) (*body)["name"] = *target;
      return show(c,
                  [&](auto& api) {
                    return creating ? api.createResourcePolicy(body->dump()) : api.updateResourcePolicy(*target, body->dump());
                  },
                  [&c](const client::ResourcePolicy& p) { printPolicies({p}, c); });
    });
  }
}

void addScalingGroupCommands(CLI::App* admin, CommandContext& context) {
  CLI::App* group = admin->add_subcommand("scaling-group", "scaling groups: sets of agents with their scheduling policies")
                        ->require_subcommand(1);
  onRun(group->add_subcommand("list", "every scaling group"), context,
        [](CommandContext& c) { return show(c, [](auto& api) { return api.scalingGroups(); }, printGroups); });

  auto name = std::make_shared<std::string>();
  CLI::App* info = group->add_subcommand("info", "one scaling group");
  info->add_option("name", *name, "group name")->required();
  onRun(info, context, [name](CommandContext& c) {
    return show(c, [name](auto& api) { return api.scalingGroup(*name); },
                [](const client::ScalingGroup& g) { printGroups({g}); });
  });

  for (const bool creating : {true, false}) {
    auto target = std::make_shared<std::string>();
    auto fields = std::make_shared<GroupFields>();
    CLI::App* command = group->add_subcommand(creating ? "create" : "update",
                                              creating ? "a new scaling group" : "change the fields given");
    command->add_option("name", *target, "group name")->required();
    addGroupFields(command, *fields);
    onRun(command, context, [creating, target, fields](CommandContext& c) {
      auto body = groupBody(*fields);
      if (!body) return c.usage(body.error().message);
      if (creating) (*body)["name"] = *target;
      return show(c,
                  [&](auto& api) {
                    return creating ? api.createScalingGroup(body->dump()) : api.updateScalingGroup(*target, body->dump());
                  },
                  [](const client::ScalingGroup& g) { printGroups({g}); });
    });
  }
}

}  // namespace

void addAdminCommands(CLI::App& app, CommandContext& context) {
  CLI::App* admin = app.add_subcommand("admin", "cluster administration (needs an admin keypair)")->require_subcommand(1);
  addAgentCommands(admin, context);
  onRun(admin->add_subcommand("resource-slots", "every slot the cluster's agents offer, with its type"), context,
        [](CommandContext& c) {
          const client::Client* api = c.api();
          if (api == nullptr) return kExitUsage;
          auto slots = api->resourceSlots();
          if (!slots) return c.fail(slots.error());
          if (c.json) {
            std::cout << Json(*slots).dump() << "\n";
            return kExitOk;
          }
          Table table({"SLOT", "TYPE"});
          for (const auto& [slot, type] : *slots) table.add({slot, type});
          table.print(std::cout);
          return kExitOk;
        });
  addKeypairCommands(admin, context);
  addPolicyCommands(admin, context);
  addScalingGroupCommands(admin, context);
  addImageCommands(admin, context);
}

}  // namespace bai::cli
