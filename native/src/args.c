/* See args.h. */
#include "args.h"

#include <limits.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"

bool xw_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv,
             napi_value *self) {
  size_t argc = n;
  return napi_get_cb_info(env, info, &argc, argv, self, NULL) == napi_ok;
}

bool xw_arg_int(napi_env env, napi_value v, const char *name, int64_t min,
                int64_t max, int64_t *out) {
  napi_valuetype t;
  double d;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    xw_throw_type(env, "The \"%s\" argument must be of type number", name);
    return false;
  }
  napi_get_value_double(env, v, &d);
  /* Compare as doubles first so NaN, ±Infinity and huge values never reach
   * the integer conversion (undefined behaviour in C). */
  if (!(d >= (double)min && d <= (double)max) || d != floor(d)) {
    xw_throw_range(env,
                   "The value of \"%s\" is out of range. It must be an "
                   "integer >= %lld and <= %lld. Received %g",
                   name, (long long)min, (long long)max, d);
    return false;
  }
  *out = (int64_t)d;
  return true;
}

bool xw_arg_fd(napi_env env, napi_value v, const char *name, int *out) {
  int64_t n;
  if (!xw_arg_int(env, v, name, 0, INT_MAX, &n)) return false;
  *out = (int)n;
  return true;
}

bool xw_arg_function(napi_env env, napi_value v, const char *name) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_function) {
    xw_throw_type(env, "The \"%s\" argument must be of type function", name);
    return false;
  }
  return true;
}

static bool is_shared_array_buffer(napi_env env, napi_value buf) {
  /* Node 20's Node-API has no SharedArrayBuffer predicate; compare with the
   * realm's constructor instead. */
  napi_value global, ctor;
  bool is = false;
  if (napi_get_global(env, &global) != napi_ok ||
      napi_get_named_property(env, global, "SharedArrayBuffer", &ctor) !=
          napi_ok)
    return false;
  if (napi_instanceof(env, buf, ctor, &is) != napi_ok) {
    bool pending;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value ignored;
      napi_get_and_clear_last_exception(env, &ignored);
    }
    return false;
  }
  return is;
}

bool xw_arg_shared_view(napi_env env, napi_value v, const char *name,
                        uint8_t **base, size_t *len) {
  bool is = false;
  napi_typedarray_type type;
  size_t length, offset;
  void *data;
  napi_value buffer;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, v, &type, &length, &data, &buffer,
                               &offset) != napi_ok ||
      type != napi_uint8_array) {
    xw_throw_type(env, "The \"%s\" argument must be a Uint8Array", name);
    return false;
  }
  if (!is_shared_array_buffer(env, buffer)) {
    xw_throw_type(env,
                  "The \"%s\" argument must be a Uint8Array over the "
                  "SharedArrayBuffer of a shared WebAssembly.Memory",
                  name);
    return false;
  }
  long page = sysconf(_SC_PAGESIZE);
  if (offset != 0 || data == NULL || ((uintptr_t)data % (uintptr_t)page) != 0) {
    xw_throw_value(env,
                   "The \"%s\" argument must view its whole memory from byte "
                   "0 (page-aligned start)",
                   name);
    return false;
  }
  *base = data;
  *len = length;
  return true;
}

bool xw_arg_bytes(napi_env env, napi_value v, const char *name, void **data,
                  size_t *len) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t length, offset, elem = 1;
    napi_value buffer;
    if (napi_get_typedarray_info(env, v, &type, &length, data, &buffer,
                                 &offset) != napi_ok)
      goto bad;
    switch (type) {
    case napi_int8_array: case napi_uint8_array:
    case napi_uint8_clamped_array: elem = 1; break;
    case napi_int16_array: case napi_uint16_array: elem = 2; break;
    case napi_int32_array: case napi_uint32_array:
    case napi_float32_array: elem = 4; break;
    default: elem = 8; break;
    }
    *len = length * elem;
    return true;
  }
  if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    napi_value buffer;
    size_t offset;
    if (napi_get_dataview_info(env, v, len, data, &buffer, &offset) != napi_ok)
      goto bad;
    return true;
  }
bad:
  xw_throw_type(env,
                "The \"%s\" argument must be an instance of Buffer, "
                "TypedArray, or DataView",
                name);
  return false;
}

bool xw_arg_path(napi_env env, napi_value v, const char *name, char *buf,
                 size_t cap) {
  napi_valuetype t;
  size_t n = 0;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string) {
    xw_throw_type(env, "The \"%s\" argument must be of type string", name);
    return false;
  }
  napi_get_value_string_utf8(env, v, NULL, 0, &n);
  if (n == 0) {
    xw_throw_value(env, "The \"%s\" argument must not be empty", name);
    return false;
  }
  if (n + 1 > cap) {
    xw_throw_range(env,
                   "The \"%s\" argument is too long: %zu bytes, at most %zu "
                   "fit in a unix socket address",
                   name, n, cap - 1);
    return false;
  }
  napi_get_value_string_utf8(env, v, buf, cap, &n);
  if (strlen(buf) != n) {
    xw_throw_value(env, "The \"%s\" argument must not contain null bytes",
                   name);
    return false;
  }
  return true;
}

bool xw_set_int(napi_env env, napi_value obj, const char *key, int64_t v) {
  napi_value jv;
  return napi_create_int64(env, v, &jv) == napi_ok &&
         napi_set_named_property(env, obj, key, jv) == napi_ok;
}

bool xw_set_method(napi_env env, napi_value obj, const char *key,
                   napi_callback fn, void *data) {
  napi_value jf;
  return napi_create_function(env, key, NAPI_AUTO_LENGTH, fn, data, &jf) ==
             napi_ok &&
         napi_set_named_property(env, obj, key, jf) == napi_ok;
}
