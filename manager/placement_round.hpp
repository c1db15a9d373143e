// One placement round over every scaling group: the group's sequencer orders its
// pending sessions; for each, quotas are checked, the free-capacity index offers the
// agents that fit, the group's selector picks one, and the reservation is committed to
// the ledger, after which the session's start is queued to its agent. A session that
// fits nowhere lets later ones pass it only up to the group's head-of-line bound.
//
// Threads: run() is called by the scheduler thread only, with the ledger's Guard held
// for the whole round (the indexes point into the ledger's agents); everything here is
// touched by that thread alone.
#pragma once

#include "group_scheduler.hpp"
#include "ledger.hpp"
#include "quota.hpp"
#include "session_lifecycle.hpp"

#include <map>
#include <set>
#include <string>
#include <vector>

namespace bai::manager {

class PlacementRound {
 public:
  using Guard = Ledger::Guard;

  // `defaults`: the policies of a group that has no record of its own.
  PlacementRound(Ledger& ledger, SessionLifecycle& lifecycle, const PolicyCatalog& policies, ScalingGroupRecord defaults,
                 Metrics& metrics, LogSink log);

  void run(const Guard& guard);
  // How many sessions the last round found pending.
  std::size_t lastPending() const { return lastPending_; }

 private:
  // What sessions hold, per owner and group, during one round.
  struct Usage {
    std::map<std::string, OwnerUsage> byOwner;
    std::map<std::string, std::map<std::string, ResourceSlot>> heldInGroup;  // group -> owner -> held
    std::map<std::string, std::uint32_t> sharedDevices;  // agent -> sessions there on fraction slots
    // group -> sessions at the head of its line, each with the slots it waits for
    std::map<std::string, std::vector<std::pair<std::string, std::set<std::string>>>> blockedBy;

    void hold(const SessionRecord& session, const SlotRegistry& registry);
    // The head-of-line session of `group` that `session` must wait behind: one waiting
    // for a slot `session` asks for; nullptr when none is.
    const std::pair<std::string, std::set<std::string>>* blocker(const std::string& group, const SessionRecord& session) const;
  };

  Usage usage(const ClusterState& state) const;
  std::vector<std::string> sequence(const ClusterState& state, GroupScheduler& group, std::vector<std::string> ids,
                                    const Usage& usage);
  void placeOne(const Guard& guard, GroupScheduler& group, const SessionRecord& session, Usage& usage);
  // Reserves `session` on `agentId` and queues its start; false when the commit failed.
  bool reserve(const Guard& guard, GroupScheduler& group, const SessionRecord& session, const std::string& agentId,
               Usage& usage);
  bool hasPriority(GroupScheduler& group, const SessionRecord& session);
  ScalingGroupRecord groupRecord(const ClusterState& state, const std::string& name) const;
  GroupScheduler& groupFor(const ClusterState& state, const std::string& name);
  void syncGroups(ClusterState& state);
  void refreshIndexes(ClusterState& state);
  void log(LogLevel level, const std::string& message) const;

  Ledger& ledger_;
  SessionLifecycle& lifecycle_;
  const PolicyCatalog& policies_;
  ScalingGroupRecord defaults_;
  Metrics& metrics_;
  LogSink log_;

  std::map<std::string, GroupScheduler> groups_;
  std::map<std::string, std::string> indexedGroup_;  // agent -> the group whose index holds it
  CandidateWindow window_;                            // reused by every decision
  std::size_t lastPending_ = 0;
};

}  // namespace bai::manager
