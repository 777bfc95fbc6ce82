#pragma once

#include <napi.h>

#include <functional>
#include <memory>

#include "core.h"

namespace zsha {

class NativeConnection : public Napi::ObjectWrap<NativeConnection> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit NativeConnection(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<Job> NewJob(Napi::Env env);
  Napi::Value Run(const Napi::CallbackInfo& info, std::shared_ptr<Job> job, bool sideJob);
  Napi::Value RunOnDomain(const Napi::CallbackInfo& info, std::function<void(Job&, virDomainPtr)> body,
                          std::function<Napi::Value(Napi::Env)> finish, bool sideJob);
  Napi::Value DomainIdJob(const Napi::CallbackInfo& info, std::function<virDomainPtr(virConnectPtr)> get,
                          const char* what);
  Napi::Value SecretJob(const Napi::CallbackInfo& info, std::function<int(virSecretPtr)> body, const char* what);

  Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Abandon(const Napi::CallbackInfo& info);
  Napi::Value Hostname(const Napi::CallbackInfo& info);
  Napi::Value Versions(const Napi::CallbackInfo& info);
  Napi::Value DefineXML(const Napi::CallbackInfo& info);
  Napi::Value LookupByName(const Napi::CallbackInfo& info);
  Napi::Value LookupByUUID(const Napi::CallbackInfo& info);
  Napi::Value ListDomains(const Napi::CallbackInfo& info);
  Napi::Value DomainCreate(const Napi::CallbackInfo& info);
  Napi::Value DomainShutdown(const Napi::CallbackInfo& info);
  Napi::Value DomainDestroy(const Napi::CallbackInfo& info);
  Napi::Value DomainUndefine(const Napi::CallbackInfo& info);
  Napi::Value DomainState(const Napi::CallbackInfo& info);
  Napi::Value DomainXML(const Napi::CallbackInfo& info);
  Napi::Value DomainJobStats(const Napi::CallbackInfo& info);
  Napi::Value DomainAbortJob(const Napi::CallbackInfo& info);
  Napi::Value DomainSetUserPassword(const Napi::CallbackInfo& info);
  Napi::Value DomainAgentCommand(const Napi::CallbackInfo& info);
  Napi::Value DomainMigrateToURI3(const Napi::CallbackInfo& info);
  Napi::Value SecretDefineXML(const Napi::CallbackInfo& info);
  Napi::Value SecretSetValue(const Napi::CallbackInfo& info);
  Napi::Value SecretUndefine(const Napi::CallbackInfo& info);
  Napi::Value Sleep(const Napi::CallbackInfo& info);

  std::shared_ptr<Core> core_;
};

}  // namespace zsha
