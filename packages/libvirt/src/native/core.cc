#include "core.h"

#include <libvirt/virterror.h>

#include <thread>

namespace zsha {

CallError LastLibvirtError(const char* what) {
  CallError out;
  virErrorPtr e = virGetLastError();
  if (e == nullptr) {
    out.message = std::string(what) + " failed without a libvirt error";
    return out;
  }
  out.code = e->code;
  out.domain = e->domain;
  out.level = e->level;
  out.message = e->message != nullptr ? e->message : std::string(what) + " failed";
  virResetLastError();
  return out;
}

Napi::Error ToJsError(Napi::Env env, const CallError& err) {
  Napi::Error e = Napi::Error::New(env, err.message);
  Napi::Object o = e.Value();
  o.Set("kind", err.kind);
  o.Set("code", err.code);
  o.Set("domain", err.domain);
  o.Set("level", err.level);
  return e;
}

void Worker::Start() {
  auto self = shared_from_this();
  std::thread([self] { self->Loop(); }).detach();
}

bool Worker::Enqueue(std::shared_ptr<Job> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

bool Worker::Wedged() {
  std::lock_guard<std::mutex> lock(mu_);
  return busy_ && Clock::now() > busyDeadline_;
}

void Worker::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
}

void Worker::Loop() {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) break;
      job = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      busyDeadline_ = job->deadline;
    }
    if (Clock::now() > job->deadline) {
      job->Fail("timeout", "the call timed out while queued behind another call");
    } else {
      try {
        job->run(*job);
      } catch (const std::exception& e) {
        job->Fail("internal", e.what());
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_ = false;
    }
    core_->Complete(std::move(job));
    if (oneShot_) {
      core_->sideThreads--;
      break;
    }
  }
  // Drop the reference to the core from this thread; the core may be freed here.
  core_.reset();
}

Core::Core() = default;

void Core::Start(Napi::Env env, Napi::Function onEvent) {
  // The channel keeps the process alive while the connection is open (like a socket) and is released
  // by close, so a program that closes its connections exits on its own. Its finalizer also runs when
  // the JS environment goes away first (a worker thread exiting with the connection open): from then on
  // deliveries are dropped instead of going to a dead channel.
  auto* weak = new std::weak_ptr<Core>(shared_from_this());
  tsfn_ = Napi::ThreadSafeFunction::New(env, onEvent, "zsha-libvirt", 0, 1, weak,
                                        [](Napi::Env, std::weak_ptr<Core>* w) {
                                          if (auto core = w->lock()) core->ChannelGone();
                                          delete w;
                                        });
  main_ = std::make_shared<Worker>(shared_from_this(), false);
  main_->Start();
}

void Core::ChannelGone() {
  std::lock_guard<std::mutex> lock(mu_);
  released_ = true;
  closed_ = true;
}

virConnectPtr Core::Conn() {
  std::lock_guard<std::mutex> lock(connMu_);
  return conn_;
}

void Core::SetConn(virConnectPtr conn) {
  std::lock_guard<std::mutex> lock(connMu_);
  conn_ = conn;
}

virConnectPtr Core::AcquireConn() {
  std::lock_guard<std::mutex> lock(connMu_);
  // virConnectRef only counts a reference (no I/O), so holding the mutex across it is cheap.
  if (conn_ != nullptr && virConnectRef(conn_) < 0) return nullptr;
  return conn_;
}

virConnectPtr Core::TakeConn() {
  std::lock_guard<std::mutex> lock(connMu_);
  virConnectPtr conn = conn_;
  conn_ = nullptr;
  return conn;
}

bool Core::Closed() {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

Napi::Value Core::Submit(Napi::Env env, std::shared_ptr<Job> job, double timeoutMs, bool sideJob) {
  Napi::Promise promise = job->deferred.Promise();
  if (!(timeoutMs > 0)) {
    job->deferred.Reject(ToJsError(env, {"invalid-argument", 0, 0, 0, "timeoutMs must be a positive number"}).Value());
    return promise;
  }
  job->deadline = Clock::now() + std::chrono::microseconds(static_cast<long long>(timeoutMs * 1000));
  if (Closed()) {
    job->deferred.Reject(ToJsError(env, {"closed", 0, 0, 0, "the connection is closed"}).Value());
    return promise;
  }
  if (sideJob) {
    if (sideThreads.load() >= kMaxSideThreads) {
      job->deferred.Reject(ToJsError(env, {"wedged", 0, 0, 0,
                                           "too many calls on this connection are still waiting for libvirt; "
                                           "close the connection and open a new one"})
                               .Value());
      return promise;
    }
    sideThreads++;
    auto worker = std::make_shared<Worker>(shared_from_this(), true);
    worker->Enqueue(job);
    worker->Start();
    return promise;
  }
  if (main_->Wedged()) {
    job->deferred.Reject(ToJsError(env, {"wedged", 0, 0, 0,
                                         "an earlier call on this connection is still stuck past its timeout; "
                                         "close the connection and open a new one"})
                             .Value());
    return promise;
  }
  if (!main_->Enqueue(job)) {
    job->deferred.Reject(ToJsError(env, {"closed", 0, 0, 0, "the connection is closed"}).Value());
  }
  return promise;
}

void Core::Complete(std::shared_ptr<Job> job) {
  Deliver([job](Napi::Env env, Napi::Function) {
    Napi::HandleScope scope(env);
    if (job->failed) {
      job->deferred.Reject(ToJsError(env, job->error).Value());
    } else {
      try {
        job->deferred.Resolve(job->finish ? job->finish(env) : env.Undefined());
      } catch (const Napi::Error& e) {
        job->deferred.Reject(e.Value());
      }
    }
    if (job->after) job->after();
  });
}

void Core::Deliver(Delivery fn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (released_) return;
  auto* data = new Delivery(std::move(fn));
  napi_status status = tsfn_.NonBlockingCall(data, [](Napi::Env env, Napi::Function jsFn, Delivery* d) {
    // env is null when the channel is being torn down: the delivery is then dropped.
    if (env != nullptr) (*d)(env, jsFn);
    delete d;
  });
  if (status != napi_ok) delete data;
}

void Core::Release() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  if (released_) return;
  released_ = true;
  tsfn_.Release();
}

void Core::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  if (main_) main_->Stop();
}

}  // namespace zsha
