// Long polls on sessions (GET /v1/sessions/{id}?wait=): each waits until its session
// ends or its deadline passes, whichever comes first, and is answered by this part's own
// thread, never under the ledger's lock (answers may call back into the manager).
//
// Threads: add() and finished() from any thread (finished() under the ledger's lock:
// the lock order is ledger, then mutex_); the answers on the waiter thread.
#pragma once

#include "caller.hpp"
#include "domain_error.hpp"
#include "store/store.hpp"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace bai::manager {

class Waiters {
 public:
  using SessionCallback = std::function<void(Outcome<SessionRecord>)>;
  // Looks a session up again for a poll whose wait ran out.
  using Lookup = std::function<Outcome<SessionRecord>(const Caller&, const std::string& id)>;

  explicit Waiters(Lookup lookup);
  ~Waiters();

  void start();
  // Answers every waiting poll (ShuttingDown) and stops the thread.
  void stop();

  // Queues a poll on session `id` (taking `done`); false, `done` left with the caller,
  // once stopping.
  bool add(const std::string& id, Caller caller, std::chrono::steady_clock::time_point deadline, SessionCallback& done);
  // Session `session` is over: its polls are answered with it.
  void finished(const SessionRecord& session);

 private:
  struct Waiter {
    Caller caller;
    std::chrono::steady_clock::time_point deadline;
    SessionCallback done;
  };

  void loop();

  Lookup lookup_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::multimap<std::string, Waiter> waiting_;
  std::deque<std::pair<SessionCallback, SessionRecord>> answers_;  // given outside mutex_
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace bai::manager
