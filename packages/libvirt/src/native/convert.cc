#include "convert.h"

namespace zsha {

std::vector<Param> CopyParams(const virTypedParameter* params, int n) {
  std::vector<Param> out;
  out.reserve(n > 0 ? n : 0);
  for (int i = 0; i < n; i++) {
    const virTypedParameter& p = params[i];
    Param c;
    c.name = p.field;
    c.type = p.type;
    switch (p.type) {
      case VIR_TYPED_PARAM_INT: c.number = p.value.i; break;
      case VIR_TYPED_PARAM_UINT: c.number = p.value.ui; break;
      case VIR_TYPED_PARAM_LLONG: c.number = static_cast<double>(p.value.l); break;
      case VIR_TYPED_PARAM_ULLONG: c.number = static_cast<double>(p.value.ul); break;
      case VIR_TYPED_PARAM_DOUBLE: c.number = p.value.d; break;
      case VIR_TYPED_PARAM_BOOLEAN: c.boolean = p.value.b != 0; break;
      case VIR_TYPED_PARAM_STRING: c.text = p.value.s != nullptr ? p.value.s : ""; break;
      default: continue;
    }
    out.push_back(std::move(c));
  }
  return out;
}

Napi::Object ParamsToJs(Napi::Env env, const std::vector<Param>& params) {
  Napi::Object o = Napi::Object::New(env);
  for (const Param& p : params) {
    if (p.type == VIR_TYPED_PARAM_STRING) {
      o.Set(p.name, p.text);
    } else if (p.type == VIR_TYPED_PARAM_BOOLEAN) {
      o.Set(p.name, p.boolean);
    } else {
      o.Set(p.name, p.number);
    }
  }
  return o;
}

std::vector<Param> ParamsFromJs(const Napi::Array& entries) {
  Napi::Env env = entries.Env();
  std::vector<Param> out;
  for (uint32_t i = 0; i < entries.Length(); i++) {
    Napi::Value v = entries.Get(i);
    if (!v.IsArray() || v.As<Napi::Array>().Length() != 3) {
      throw Napi::TypeError::New(env, "typed parameter " + std::to_string(i) + " must be [name, type, value]");
    }
    Napi::Array e = v.As<Napi::Array>();
    Param p;
    p.name = e.Get(0u).ToString().Utf8Value();
    std::string type = e.Get(1u).ToString().Utf8Value();
    Napi::Value value = e.Get(2u);
    if (type == "string" && value.IsString()) {
      p.type = VIR_TYPED_PARAM_STRING;
      p.text = value.As<Napi::String>().Utf8Value();
    } else if ((type == "ullong" || type == "int") && value.IsNumber()) {
      p.type = type == "ullong" ? VIR_TYPED_PARAM_ULLONG : VIR_TYPED_PARAM_INT;
      p.number = value.As<Napi::Number>().DoubleValue();
    } else if (type == "boolean" && value.IsBoolean()) {
      p.type = VIR_TYPED_PARAM_BOOLEAN;
      p.boolean = value.As<Napi::Boolean>().Value();
    } else {
      throw Napi::TypeError::New(env, "typed parameter " + p.name + " has an unsupported type or value");
    }
    out.push_back(std::move(p));
  }
  return out;
}

bool BuildParams(const std::vector<Param>& in, virTypedParameterPtr* out, int* n) {
  *out = nullptr;
  *n = 0;
  int max = 0;
  for (const Param& p : in) {
    int rc = 0;
    switch (p.type) {
      case VIR_TYPED_PARAM_STRING: rc = virTypedParamsAddString(out, n, &max, p.name.c_str(), p.text.c_str()); break;
      case VIR_TYPED_PARAM_ULLONG:
        rc = virTypedParamsAddULLong(out, n, &max, p.name.c_str(), static_cast<unsigned long long>(p.number));
        break;
      case VIR_TYPED_PARAM_INT: rc = virTypedParamsAddInt(out, n, &max, p.name.c_str(), static_cast<int>(p.number)); break;
      case VIR_TYPED_PARAM_BOOLEAN: rc = virTypedParamsAddBoolean(out, n, &max, p.name.c_str(), p.boolean ? 1 : 0); break;
      default: rc = -1;
    }
    if (rc < 0) {
      virTypedParamsFree(*out, *n);
      *out = nullptr;
      *n = 0;
      return false;
    }
  }
  return true;
}

}  // namespace zsha
