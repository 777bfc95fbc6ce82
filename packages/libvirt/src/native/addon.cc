// Module entry: libvirt's process-wide setup and its event-loop thread.
#include <dlfcn.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <napi.h>

#include <mutex>
#include <string>
#include <thread>

#include "connection.h"

namespace zsha {
namespace {

std::once_flag initOnce;
std::string initError;

// libvirt prints every error to stderr unless an error handler is set; errors reach JS instead.
void SilentErrorHandler(void*, virErrorPtr) {}

// Once per process (the addon may be loaded by several worker threads): initialise libvirt, install the
// default event loop implementation (it must exist before the first connection is opened, or keepalive
// and events never run) and drive it from a thread of its own. The thread is detached and runs until
// the process exits; it holds no handle of Node's event loop, so it never keeps the process alive.
// Node unloads an addon (dlclose) when the worker thread that loaded it exits. Our threads outlive any
// one JS environment (the event loop runs for the process; a worker may still be inside libvirt), so
// the addon, and libvirt with it, must stay mapped: take a reference on ourselves that is never dropped.
void PinAddon() {
  Dl_info self;
  if (dladdr(reinterpret_cast<void*>(&PinAddon), &self) != 0 && self.dli_fname != nullptr) {
    dlopen(self.dli_fname, RTLD_NOW | RTLD_NODELETE);
  }
}

void InitLibvirt() {
  PinAddon();
  if (virInitialize() < 0) {
    initError = "virInitialize failed";
    return;
  }
  virSetErrorFunc(nullptr, SilentErrorHandler);
  if (virEventRegisterDefaultImpl() < 0) {
    initError = "virEventRegisterDefaultImpl failed";
    return;
  }
  std::thread([] {
    for (;;) {
      if (virEventRunDefaultImpl() < 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }).detach();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  std::call_once(initOnce, InitLibvirt);
  if (!initError.empty()) throw Napi::Error::New(env, "libvirt could not be initialised: " + initError);
  exports.Set("NativeConnection", NativeConnection::Define(env));
  unsigned long version = 0;
  virGetVersion(&version, nullptr, nullptr);
  exports.Set("libraryVersion", static_cast<double>(version));
  return exports;
}

}  // namespace zsha

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return zsha::Init(env, exports); }

NODE_API_MODULE(zsha_libvirt, InitModule)
