// Conversions between libvirt's typed parameters and JS values. Copies are made on the libvirt side
// (worker or event thread) and turned into JS objects on the JS thread only.
#pragma once

#include <libvirt/libvirt.h>
#include <napi.h>

#include <string>
#include <vector>

namespace zsha {

// One typed parameter, owned (libvirt's array is freed right after copying).
struct Param {
  std::string name;
  int type = 0;  // virTypedParameterType
  double number = 0;
  bool boolean = false;
  std::string text;
};

std::vector<Param> CopyParams(const virTypedParameter* params, int n);
// { name: value, ... }: numbers as Number (byte counts stay far below 2^53), booleans, strings.
Napi::Object ParamsToJs(Napi::Env env, const std::vector<Param>& params);
// From the wrapper's [[name, "string"|"ullong"|"int"|"boolean", value], ...]; throws a TypeError naming
// the bad entry.
std::vector<Param> ParamsFromJs(const Napi::Array& entries);
// Builds a libvirt array (free with virTypedParamsFree); returns false with libvirt's error set.
bool BuildParams(const std::vector<Param>& in, virTypedParameterPtr* out, int* n);

}  // namespace zsha
