// NativeConnection: one libvirt connection, its worker thread and its event channel.
//
// Every method takes the call's timeout (ms) as its last argument and returns a promise; the libvirt
// work happens in a Job on the connection's worker (see core.h). Domains are addressed by UUID and looked
// up inside each job, so no virDomainPtr ever lives on the JS side and none has to be freed by the GC.
#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <cstdlib>
#include <cstring>
#include <thread>

#include "connection.h"
#include "convert.h"
#include "core.h"

namespace zsha {

namespace {

struct DomainId {
  std::string name;
  std::string uuid;
};

DomainId IdOf(virDomainPtr dom) {
  DomainId id;
  const char* name = virDomainGetName(dom);
  id.name = name != nullptr ? name : "";
  char uuid[VIR_UUID_STRING_BUFLEN] = {0};
  if (virDomainGetUUIDString(dom, uuid) == 0) id.uuid = uuid;
  return id;
}

Napi::Object IdToJs(Napi::Env env, const DomainId& id) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", id.name);
  o.Set("uuid", id.uuid);
  return o;
}

std::string StringArg(const Napi::CallbackInfo& info, size_t i, const char* field) {
  if (info.Length() <= i || !info[i].IsString()) {
    throw Napi::TypeError::New(info.Env(), std::string(field) + " must be a string");
  }
  return info[i].As<Napi::String>().Utf8Value();
}

double NumberArg(const Napi::CallbackInfo& info, size_t i, const char* field) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string(field) + " must be a number");
  }
  return info[i].As<Napi::Number>().DoubleValue();
}

unsigned int FlagsArg(const Napi::CallbackInfo& info, size_t i) {
  return static_cast<unsigned int>(NumberArg(info, i, "flags"));
}

double TimeoutArg(const Napi::CallbackInfo& info) {
  return NumberArg(info, info.Length() - 1, "timeoutMs");
}

// Events: libvirt calls these on its event-loop thread. The opaque is a weak reference to the core so
// an event racing a close finds the core gone (or its channel released) and is dropped.
using WeakCore = std::weak_ptr<Core>;

void FreeWeakCore(void* opaque) { delete static_cast<WeakCore*>(opaque); }

void Emit(void* opaque, std::function<Napi::Object(Napi::Env)> build) {
  std::shared_ptr<Core> core = static_cast<WeakCore*>(opaque)->lock();
  if (!core) return;
  core->Deliver([build](Napi::Env env, Napi::Function onEvent) {
    Napi::HandleScope scope(env);
    try {
      onEvent.Call({build(env)});
    } catch (const Napi::Error&) {
      // The wrapper's dispatcher does not throw (it rethrows listeners' errors asynchronously); a C++
      // exception must not escape into Node's callback either way.
    }
  });
}

int OnLifecycle(virConnectPtr, virDomainPtr dom, int event, int detail, void* opaque) {
  DomainId id = IdOf(dom);
  Emit(opaque, [id, event, detail](Napi::Env env) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("type", "lifecycle");
    o.Set("domain", IdToJs(env, id));
    o.Set("event", event);
    o.Set("detail", detail);
    return o;
  });
  return 0;
}

void OnJobCompleted(virConnectPtr, virDomainPtr dom, virTypedParameterPtr params, int n, void* opaque) {
  DomainId id = IdOf(dom);
  std::vector<Param> stats = CopyParams(params, n);
  Emit(opaque, [id, stats](Napi::Env env) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("type", "jobCompleted");
    o.Set("domain", IdToJs(env, id));
    o.Set("stats", ParamsToJs(env, stats));
    return o;
  });
}

void OnMigrationIteration(virConnectPtr, virDomainPtr dom, int iteration, void* opaque) {
  DomainId id = IdOf(dom);
  Emit(opaque, [id, iteration](Napi::Env env) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("type", "migrationIteration");
    o.Set("domain", IdToJs(env, id));
    o.Set("iteration", iteration);
    return o;
  });
}

void OnClose(virConnectPtr, int reason, void* opaque) {
  Emit(opaque, [reason](Napi::Env env) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("type", "close");
    o.Set("reason", reason);
    return o;
  });
}

// Worker side of close: deregister everything (a registered callback holds a reference that would keep
// the connection open), then close.
void CloseOnWorker(Core& core) {
  virConnectPtr conn = core.TakeConn();
  if (conn == nullptr) return;
  if (core.lifecycleCb >= 0) virConnectDomainEventDeregisterAny(conn, core.lifecycleCb);
  if (core.jobCompletedCb >= 0) virConnectDomainEventDeregisterAny(conn, core.jobCompletedCb);
  if (core.migrationIterationCb >= 0) virConnectDomainEventDeregisterAny(conn, core.migrationIterationCb);
  if (core.closeCbRegistered) virConnectUnregisterCloseCallback(conn, OnClose);
  core.lifecycleCb = core.jobCompletedCb = core.migrationIterationCb = -1;
  core.closeCbRegistered = false;
  virConnectClose(conn);
}

}  // namespace

Napi::Function NativeConnection::Define(Napi::Env env) {
  return DefineClass(env, "NativeConnection",
                     {
                         InstanceMethod<&NativeConnection::Open>("open"),
                         InstanceMethod<&NativeConnection::Close>("close"),
                         InstanceMethod<&NativeConnection::Abandon>("abandon"),
                         InstanceMethod<&NativeConnection::Hostname>("hostname"),
                         InstanceMethod<&NativeConnection::Versions>("versions"),
                         InstanceMethod<&NativeConnection::DefineXML>("defineXML"),
                         InstanceMethod<&NativeConnection::LookupByName>("lookupByName"),
                         InstanceMethod<&NativeConnection::LookupByUUID>("lookupByUUID"),
                         InstanceMethod<&NativeConnection::ListDomains>("listDomains"),
                         InstanceMethod<&NativeConnection::DomainCreate>("domainCreate"),
                         InstanceMethod<&NativeConnection::DomainShutdown>("domainShutdown"),
                         InstanceMethod<&NativeConnection::DomainDestroy>("domainDestroy"),
                         InstanceMethod<&NativeConnection::DomainUndefine>("domainUndefine"),
                         InstanceMethod<&NativeConnection::DomainState>("domainState"),
                         InstanceMethod<&NativeConnection::DomainXML>("domainXML"),
                         InstanceMethod<&NativeConnection::DomainJobStats>("domainJobStats"),
                         InstanceMethod<&NativeConnection::DomainAbortJob>("domainAbortJob"),
                         InstanceMethod<&NativeConnection::DomainSetUserPassword>("domainSetUserPassword"),
                         InstanceMethod<&NativeConnection::DomainAgentCommand>("domainAgentCommand"),
                         InstanceMethod<&NativeConnection::DomainMigrateToURI3>("domainMigrateToURI3"),
                         InstanceMethod<&NativeConnection::SecretDefineXML>("secretDefineXML"),
                         InstanceMethod<&NativeConnection::SecretSetValue>("secretSetValue"),
                         InstanceMethod<&NativeConnection::SecretUndefine>("secretUndefine"),
                         InstanceMethod<&NativeConnection::Sleep>("sleep"),
                     });
}

// new NativeConnection(onEvent): starts the worker thread and opens the event channel.
NativeConnection::NativeConnection(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeConnection>(info) {
  if (info.Length() < 1 || !info[0].IsFunction()) {
    throw Napi::TypeError::New(info.Env(), "onEvent must be a function");
  }
  core_ = std::make_shared<Core>();
  core_->Start(info.Env(), info[0].As<Napi::Function>());
}

std::shared_ptr<Job> NativeConnection::NewJob(Napi::Env env) { return std::make_shared<Job>(env); }

Napi::Value NativeConnection::Run(const Napi::CallbackInfo& info, std::shared_ptr<Job> job, bool sideJob) {
  return core_->Submit(info.Env(), std::move(job), TimeoutArg(info), sideJob);
}

// A job on one domain, looked up by UUID inside the job.
Napi::Value NativeConnection::RunOnDomain(const Napi::CallbackInfo& info, std::function<void(Job&, virDomainPtr)> body,
                                          std::function<Napi::Value(Napi::Env)> finish, bool sideJob) {
  std::string uuid = StringArg(info, 0, "uuid");
  auto job = NewJob(info.Env());
  auto core = core_;
  job->run = [core, uuid, body](Job& j) {
    virConnectPtr conn = core->AcquireConn();
    if (conn == nullptr) return j.Fail("closed", "the connection is closed");
    virDomainPtr dom = virDomainLookupByUUIDString(conn, uuid.c_str());
    if (dom == nullptr) {
      j.FailLibvirt("virDomainLookupByUUIDString");
    } else {
      body(j, dom);
      virDomainFree(dom);
    }
    virConnectClose(conn);  // drops this job's reference only
  };
  job->finish = std::move(finish);
  return Run(info, job, sideJob);
}

// open(uri, readOnly, keepAliveIntervalSec, keepAliveCount, timeoutMs)
Napi::Value NativeConnection::Open(const Napi::CallbackInfo& info) {
  std::string uri = StringArg(info, 0, "uri");
  bool readOnly = info.Length() > 1 && info[1].ToBoolean().Value();
  int kaInterval = static_cast<int>(NumberArg(info, 2, "keepAliveIntervalSec"));
  unsigned int kaCount = static_cast<unsigned int>(NumberArg(info, 3, "keepAliveCount"));
  auto job = NewJob(info.Env());
  auto core = core_;
  job->run = [core, uri, readOnly, kaInterval, kaCount](Job& j) {
    virConnectPtr conn = virConnectOpenAuth(uri.c_str(), nullptr, readOnly ? VIR_CONNECT_RO : 0);
    if (conn == nullptr) return j.FailLibvirt("virConnectOpen");
    core->SetConn(conn);
    auto reg = [&](int id, virConnectDomainEventGenericCallback cb) {
      return virConnectDomainEventRegisterAny(conn, nullptr, id, cb, new WeakCore(core), FreeWeakCore);
    };
    core->lifecycleCb = reg(VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(OnLifecycle));
    core->jobCompletedCb = reg(VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, VIR_DOMAIN_EVENT_CALLBACK(OnJobCompleted));
    core->migrationIterationCb =
        reg(VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION, VIR_DOMAIN_EVENT_CALLBACK(OnMigrationIteration));
    if (core->lifecycleCb < 0 || core->jobCompletedCb < 0 || core->migrationIterationCb < 0) {
      j.FailLibvirt("virConnectDomainEventRegisterAny");
      return CloseOnWorker(*core);
    }
    if (virConnectRegisterCloseCallback(conn, OnClose, new WeakCore(core), FreeWeakCore) < 0) {
      j.FailLibvirt("virConnectRegisterCloseCallback");
      return CloseOnWorker(*core);
    }
    core->closeCbRegistered = true;
    // Local drivers (test:///, qemu:/// without a daemon) have no keepalive: VIR_ERR_NO_SUPPORT is fine.
    if (kaInterval > 0 && virConnectSetKeepAlive(conn, kaInterval, kaCount) < 0) {
      if (virGetLastErrorCode() == VIR_ERR_NO_SUPPORT) {
        virResetLastError();
      } else {
        j.FailLibvirt("virConnectSetKeepAlive");
        return CloseOnWorker(*core);
      }
    }
  };
  return Run(info, job, false);
}

// close(timeoutMs): closes on the worker, then releases the channel so the process may exit.
Napi::Value NativeConnection::Close(const Napi::CallbackInfo& info) {
  auto job = NewJob(info.Env());
  auto core = core_;
  job->run = [core](Job&) { CloseOnWorker(*core); };
  job->after = [core] { core->Release(); };
  Napi::Value promise = Run(info, job, false);
  core_->Shutdown();
  return promise;
}

// abandon(): for a connection whose worker is stuck (close timed out): drop the channel now. The stuck
// thread ends whenever libvirt returns; whatever it produces is discarded.
Napi::Value NativeConnection::Abandon(const Napi::CallbackInfo& info) {
  core_->Shutdown();
  core_->Release();
  return info.Env().Undefined();
}

Napi::Value NativeConnection::Hostname(const Napi::CallbackInfo& info) {
  auto job = NewJob(info.Env());
  auto core = core_;
  auto out = std::make_shared<std::string>();
  job->run = [core, out](Job& j) {
    char* h = virConnectGetHostname(core->Conn());
    if (h == nullptr) return j.FailLibvirt("virConnectGetHostname");
    *out = h;
    free(h);
  };
  job->finish = [out](Napi::Env env) { return Napi::String::New(env, *out); };
  return Run(info, job, false);
}

// versions(timeoutMs) -> { library, daemon, hypervisor, type } (versions as major*1e6+minor*1e3+micro)
Napi::Value NativeConnection::Versions(const Napi::CallbackInfo& info) {
  struct Out {
    unsigned long library = 0, daemon = 0, hypervisor = 0;
    std::string type;
  };
  auto job = NewJob(info.Env());
  auto core = core_;
  auto out = std::make_shared<Out>();
  job->run = [core, out](Job& j) {
    if (virGetVersion(&out->library, nullptr, nullptr) < 0) return j.FailLibvirt("virGetVersion");
    if (virConnectGetLibVersion(core->Conn(), &out->daemon) < 0) return j.FailLibvirt("virConnectGetLibVersion");
    if (virConnectGetVersion(core->Conn(), &out->hypervisor) < 0) return j.FailLibvirt("virConnectGetVersion");
    const char* type = virConnectGetType(core->Conn());
    if (type == nullptr) return j.FailLibvirt("virConnectGetType");
    out->type = type;
  };
  job->finish = [out](Napi::Env env) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("library", static_cast<double>(out->library));
    o.Set("daemon", static_cast<double>(out->daemon));
    o.Set("hypervisor", static_cast<double>(out->hypervisor));
    o.Set("type", out->type);
    return o;
  };
  return Run(info, job, false);
}

Napi::Value NativeConnection::DomainIdJob(const Napi::CallbackInfo& info,
                                          std::function<virDomainPtr(virConnectPtr)> get, const char* what) {
  auto job = NewJob(info.Env());
  auto core = core_;
  auto out = std::make_shared<DomainId>();
  job->run = [core, out, get, what](Job& j) {
    virDomainPtr dom = get(core->Conn());
    if (dom == nullptr) return j.FailLibvirt(what);
    *out = IdOf(dom);
    virDomainFree(dom);
  };
  job->finish = [out](Napi::Env env) { return IdToJs(env, *out); };
  return Run(info, job, false);
}

Napi::Value NativeConnection::DefineXML(const Napi::CallbackInfo& info) {
  std::string xml = StringArg(info, 0, "xml");
  return DomainIdJob(info, [xml](virConnectPtr c) { return virDomainDefineXML(c, xml.c_str()); }, "virDomainDefineXML");
}

Napi::Value NativeConnection::LookupByName(const Napi::CallbackInfo& info) {
  std::string name = StringArg(info, 0, "name");
  return DomainIdJob(
      info, [name](virConnectPtr c) { return virDomainLookupByName(c, name.c_str()); }, "virDomainLookupByName");
}

Napi::Value NativeConnection::LookupByUUID(const Napi::CallbackInfo& info) {
  std::string uuid = StringArg(info, 0, "uuid");
  return DomainIdJob(
      info, [uuid](virConnectPtr c) { return virDomainLookupByUUIDString(c, uuid.c_str()); },
      "virDomainLookupByUUIDString");
}

// listDomains(flags, timeoutMs) -> [{ name, uuid }]
Napi::Value NativeConnection::ListDomains(const Napi::CallbackInfo& info) {
  unsigned int flags = FlagsArg(info, 0);
  auto job = NewJob(info.Env());
  auto core = core_;
  auto out = std::make_shared<std::vector<DomainId>>();
  job->run = [core, out, flags](Job& j) {
    virDomainPtr* doms = nullptr;
    int n = virConnectListAllDomains(core->Conn(), &doms, flags);
    if (n < 0) return j.FailLibvirt("virConnectListAllDomains");
    for (int i = 0; i < n; i++) {
      out->push_back(IdOf(doms[i]));
      virDomainFree(doms[i]);
    }
    free(doms);
  };
  job->finish = [out](Napi::Env env) {
    Napi::Array a = Napi::Array::New(env, out->size());
    for (size_t i = 0; i < out->size(); i++) a.Set(static_cast<uint32_t>(i), IdToJs(env, (*out)[i]));
    return a;
  };
  return Run(info, job, false);
}

// domainCreate(uuid, flags, timeoutMs) and friends: a call that returns 0 or -1.
#define ZSHA_SIMPLE_DOMAIN_CALL(Method, call)                                                      \
  Napi::Value NativeConnection::Method(const Napi::CallbackInfo& info) {                           \
    unsigned int flags = FlagsArg(info, 1);                                                        \
    return RunOnDomain(                                                                            \
        info, [flags](Job& j, virDomainPtr d) { if (call(d, flags) < 0) j.FailLibvirt(#call); }, \
        nullptr, false);                                                                           \
  }

ZSHA_SIMPLE_DOMAIN_CALL(DomainCreate, virDomainCreateWithFlags)
ZSHA_SIMPLE_DOMAIN_CALL(DomainShutdown, virDomainShutdownFlags)
ZSHA_SIMPLE_DOMAIN_CALL(DomainDestroy, virDomainDestroyFlags)
ZSHA_SIMPLE_DOMAIN_CALL(DomainUndefine, virDomainUndefineFlags)

// domainAbortJob(uuid, timeoutMs): a side job (see core.h), so it never waits behind job stats.
Napi::Value NativeConnection::DomainAbortJob(const Napi::CallbackInfo& info) {
  return RunOnDomain(
      info, [](Job& j, virDomainPtr d) { if (virDomainAbortJob(d) < 0) j.FailLibvirt("virDomainAbortJob"); }, nullptr,
      true);
}

// domainState(uuid, timeoutMs) -> { state, reason } (virDomainState and the matching reason enum)
Napi::Value NativeConnection::DomainState(const Napi::CallbackInfo& info) {
  auto out = std::make_shared<std::pair<int, int>>(0, 0);
  return RunOnDomain(
      info,
      [out](Job& j, virDomainPtr d) {
        if (virDomainGetState(d, &out->first, &out->second, 0) < 0) j.FailLibvirt("virDomainGetState");
      },
      [out](Napi::Env env) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("state", out->first);
        o.Set("reason", out->second);
        return o;
      },
      false);
}

// domainXML(uuid, flags, timeoutMs) -> string
Napi::Value NativeConnection::DomainXML(const Napi::CallbackInfo& info) {
  unsigned int flags = FlagsArg(info, 1);
  auto out = std::make_shared<std::string>();
  return RunOnDomain(
      info,
      [out, flags](Job& j, virDomainPtr d) {
        char* xml = virDomainGetXMLDesc(d, flags);
        if (xml == nullptr) return j.FailLibvirt("virDomainGetXMLDesc");
        *out = xml;
        free(xml);
      },
      [out](Napi::Env env) { return Napi::String::New(env, *out); }, false);
}

// domainJobStats(uuid, flags, timeoutMs) -> { type, stats: { name: value } }. A side job (see core.h):
// during a migration qemu's driver may make it wait for the domain's job lock.
Napi::Value NativeConnection::DomainJobStats(const Napi::CallbackInfo& info) {
  unsigned int flags = FlagsArg(info, 1);
  struct Out {
    int type = 0;
    std::vector<Param> stats;
  };
  auto out = std::make_shared<Out>();
  return RunOnDomain(
      info,
      [out, flags](Job& j, virDomainPtr d) {
        virTypedParameterPtr params = nullptr;
        int n = 0;
        if (virDomainGetJobStats(d, &out->type, &params, &n, flags) < 0) return j.FailLibvirt("virDomainGetJobStats");
        out->stats = CopyParams(params, n);
        virTypedParamsFree(params, n);
      },
      [out](Napi::Env env) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("type", out->type);
        o.Set("stats", ParamsToJs(env, out->stats));
        return o;
      },
      true);
}

// domainSetUserPassword(uuid, user, password, flags, timeoutMs)
Napi::Value NativeConnection::DomainSetUserPassword(const Napi::CallbackInfo& info) {
  std::string user = StringArg(info, 1, "user");
  std::string password = StringArg(info, 2, "password");
  unsigned int flags = FlagsArg(info, 3);
  return RunOnDomain(
      info,
      [user, password, flags](Job& j, virDomainPtr d) {
        if (virDomainSetUserPassword(d, user.c_str(), password.c_str(), flags) < 0) {
          j.FailLibvirt("virDomainSetUserPassword");
        }
      },
      nullptr, false);
}

// domainAgentCommand(uuid, command, agentTimeoutSec, flags, timeoutMs) -> reply JSON text
Napi::Value NativeConnection::DomainAgentCommand(const Napi::CallbackInfo& info) {
  std::string cmd = StringArg(info, 1, "command");
  int agentTimeout = static_cast<int>(NumberArg(info, 2, "agentTimeoutSec"));
  unsigned int flags = FlagsArg(info, 3);
  auto out = std::make_shared<std::string>();
  return RunOnDomain(
      info,
      [cmd, agentTimeout, flags, out](Job& j, virDomainPtr d) {
        char* reply = virDomainQemuAgentCommand(d, cmd.c_str(), agentTimeout, flags);
        if (reply == nullptr) return j.FailLibvirt("virDomainQemuAgentCommand");
        *out = reply;
        free(reply);
      },
      [out](Napi::Env env) { return Napi::String::New(env, *out); }, false);
}

// domainMigrateToURI3(uuid, dconnuri, params, flags, timeoutMs): runs on a thread of its own, so job
// stats and abort on this connection keep working while the migration runs.
Napi::Value NativeConnection::DomainMigrateToURI3(const Napi::CallbackInfo& info) {
  std::string dconnuri = StringArg(info, 1, "dconnuri");
  if (info.Length() < 3 || !info[2].IsArray()) throw Napi::TypeError::New(info.Env(), "params must be an array");
  std::vector<Param> params = ParamsFromJs(info[2].As<Napi::Array>());
  unsigned int flags = FlagsArg(info, 3);
  return RunOnDomain(
      info,
      [dconnuri, params, flags](Job& j, virDomainPtr d) {
        virTypedParameterPtr p = nullptr;
        int n = 0;
        if (!BuildParams(params, &p, &n)) return j.FailLibvirt("virTypedParamsAdd");
        const char* uri = dconnuri.empty() ? nullptr : dconnuri.c_str();
        if (virDomainMigrateToURI3(d, uri, p, n, flags) < 0) j.FailLibvirt("virDomainMigrateToURI3");
        virTypedParamsFree(p, n);
      },
      nullptr, true);
}

// secretDefineXML(xml, timeoutMs) -> uuid
Napi::Value NativeConnection::SecretDefineXML(const Napi::CallbackInfo& info) {
  std::string xml = StringArg(info, 0, "xml");
  auto job = NewJob(info.Env());
  auto core = core_;
  auto out = std::make_shared<std::string>();
  job->run = [core, xml, out](Job& j) {
    virSecretPtr s = virSecretDefineXML(core->Conn(), xml.c_str(), 0);
    if (s == nullptr) return j.FailLibvirt("virSecretDefineXML");
    char uuid[VIR_UUID_STRING_BUFLEN] = {0};
    if (virSecretGetUUIDString(s, uuid) < 0) j.FailLibvirt("virSecretGetUUIDString");
    *out = uuid;
    virSecretFree(s);
  };
  job->finish = [out](Napi::Env env) { return Napi::String::New(env, *out); };
  return Run(info, job, false);
}

Napi::Value NativeConnection::SecretJob(const Napi::CallbackInfo& info, std::function<int(virSecretPtr)> body,
                                        const char* what) {
  std::string uuid = StringArg(info, 0, "uuid");
  auto job = NewJob(info.Env());
  auto core = core_;
  job->run = [core, uuid, body, what](Job& j) {
    virSecretPtr s = virSecretLookupByUUIDString(core->Conn(), uuid.c_str());
    if (s == nullptr) return j.FailLibvirt("virSecretLookupByUUIDString");
    if (body(s) < 0) j.FailLibvirt(what);
    virSecretFree(s);
  };
  return Run(info, job, false);
}

// secretSetValue(uuid, value: Buffer, timeoutMs). The copy is wiped once libvirt has it.
Napi::Value NativeConnection::SecretSetValue(const Napi::CallbackInfo& info) {
  if (info.Length() < 2 || !info[1].IsBuffer()) throw Napi::TypeError::New(info.Env(), "value must be a Buffer");
  Napi::Buffer<unsigned char> buf = info[1].As<Napi::Buffer<unsigned char>>();
  auto value = std::make_shared<std::vector<unsigned char>>(buf.Data(), buf.Data() + buf.Length());
  return SecretJob(
      info,
      [value](virSecretPtr s) {
        int rc = virSecretSetValue(s, value->data(), value->size(), 0);
        std::fill(value->begin(), value->end(), 0);
        return rc;
      },
      "virSecretSetValue");
}

Napi::Value NativeConnection::SecretUndefine(const Napi::CallbackInfo& info) {
  return SecretJob(info, [](virSecretPtr s) { return virSecretUndefine(s); }, "virSecretUndefine");
}

// sleep(ms, timeoutMs): occupies the worker like a hung libvirt call would. Only for tests of the
// timeout and wedge behaviour; it makes no libvirt call.
Napi::Value NativeConnection::Sleep(const Napi::CallbackInfo& info) {
  double ms = NumberArg(info, 0, "ms");
  auto job = NewJob(info.Env());
  job->run = [ms](Job&) { std::this_thread::sleep_for(std::chrono::microseconds(static_cast<long long>(ms * 1000))); };
  return Run(info, job, false);
}

}  // namespace zsha
