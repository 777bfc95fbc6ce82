// Threading core of the binding: jobs, the worker threads that run them, and the one channel back to JS.
//
// Rules (the reason this file exists):
// - No libvirt call runs on the JS thread or on libuv's thread pool. Every call is a Job run by a Worker,
//   a thread owned by the connection. A hung libvirtd therefore blocks only that thread.
// - Results and events reach JS only through the connection's ThreadSafeFunction (Core::Deliver).
// - A Worker runs one job at a time. If the running job has outlived its deadline the worker counts as
//   wedged: new calls on it fail fast (kind "wedged") instead of queueing behind a call that may never
//   return. Jobs whose deadline passes while queued are skipped.
// - Side jobs get a one-shot thread of their own: the migration (it lasts seconds to minutes), and job
//   stats and abort, which qemu's driver may hold back while it owns the domain's job lock during a
//   migration. So a migration never wedges the worker, and abort is never queued behind a stats call.
//   At most kMaxSideThreads run per connection; past that, calls are refused (kind "wedged").
#pragma once

#include <libvirt/libvirt.h>
#include <napi.h>

#include <chrono>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace zsha {

using Clock = std::chrono::steady_clock;

constexpr int kMaxSideThreads = 16;

// An error as it crosses to JS: either libvirt's own (code/domain/level from virError) or the binding's
// (kind "timeout", "wedged", "closed", "invalid-argument").
struct CallError {
  std::string kind = "libvirt";
  int code = 0;
  int domain = 0;
  int level = 0;
  std::string message;
};

// Copies libvirt's last error of the calling thread (virGetLastError is thread-local).
CallError LastLibvirtError(const char* what);
Napi::Error ToJsError(Napi::Env env, const CallError& err);

class Core;

struct Job {
  // Runs on a worker thread; reports failure through Fail*.
  std::function<void(Job&)> run;
  // Runs on the JS thread after a successful run; builds the resolved value.
  std::function<Napi::Value(Napi::Env)> finish;
  // Runs on the JS thread after the promise settled, success or not (used by close).
  std::function<void()> after;
  Napi::Promise::Deferred deferred;
  Clock::time_point deadline;
  bool failed = false;
  CallError error;

  explicit Job(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
  void FailLibvirt(const char* what) {
    failed = true;
    error = LastLibvirtError(what);
  }
  void Fail(const std::string& kind, const std::string& message) {
    failed = true;
    error = CallError{kind, 0, 0, 0, message};
  }
};

class Worker : public std::enable_shared_from_this<Worker> {
 public:
  Worker(std::shared_ptr<Core> core, bool oneShot) : core_(std::move(core)), oneShot_(oneShot) {}
  void Start();
  // False when the worker is stopping (the job is then not queued).
  bool Enqueue(std::shared_ptr<Job> job);
  // True while the job in progress has outlived its deadline.
  bool Wedged();
  // Finish the queued jobs, then let the thread end.
  void Stop();

 private:
  void Loop();
  std::shared_ptr<Core> core_;
  bool oneShot_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false;
  bool busy_ = false;
  Clock::time_point busyDeadline_;
};

class Core : public std::enable_shared_from_this<Core> {
 public:
  using Delivery = std::function<void(Napi::Env, Napi::Function)>;

  Core();
  // Opens the channel to JS and starts the connection's worker thread.
  void Start(Napi::Env env, Napi::Function onEvent);

  // Queues a job on the connection's worker (or, for a side job, on a one-shot thread of its own).
  // Returns the promise; rejects at once when the connection is closed or its worker is wedged.
  Napi::Value Submit(Napi::Env env, std::shared_ptr<Job> job, double timeoutMs, bool sideJob);
  // One-shot threads in flight (a side job's thread ends after its job).
  std::atomic<int> sideThreads{0};
  // Called by a worker when a job is done: settles its promise on the JS thread.
  void Complete(std::shared_ptr<Job> job);
  // Runs `fn` on the JS thread, unless the channel is already released (then it is dropped).
  void Deliver(Delivery fn);
  // JS thread: gives up the channel so the process may exit; later deliveries are dropped.
  void Release();
  // JS thread: refuse new calls and let the worker end after the queued ones.
  void Shutdown();
  bool Closed();
  // The channel's finalizer ran: nothing may be delivered any more.
  void ChannelGone();

  // The libvirt connection. Set, used and closed on the main worker; side jobs (other threads) take a
  // reference of their own for the duration of their job, so a close cannot free it under them.
  virConnectPtr Conn();
  void SetConn(virConnectPtr conn);
  // Side jobs: the connection with a reference taken (release with virConnectClose), or null if closed.
  virConnectPtr AcquireConn();
  // Close: hands over the connection and clears it.
  virConnectPtr TakeConn();
  int lifecycleCb = -1;
  int jobCompletedCb = -1;
  int migrationIterationCb = -1;
  bool closeCbRegistered = false;

 private:
  std::mutex mu_;
  std::mutex connMu_;
  virConnectPtr conn_ = nullptr;
  Napi::ThreadSafeFunction tsfn_;
  bool released_ = false;
  bool closed_ = false;
  std::shared_ptr<Worker> main_;
};

}  // namespace zsha
