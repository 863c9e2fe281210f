/* See errors.h. */
#include "errors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Only the codes our syscalls can plausibly return, plus common neighbours;
 * anything else is reported as E<num>, which is still unique and stable. */
static const struct {
  int num;
  const char *name;
} errno_names[] = {
#define E(x) {x, #x}
    E(EPERM),        E(ENOENT),          E(ESRCH),        E(EINTR),
    E(EIO),          E(ENXIO),           E(E2BIG),        E(EBADF),
    E(ECHILD),       E(EAGAIN),          E(ENOMEM),       E(EACCES),
    E(EFAULT),       E(EBUSY),           E(EEXIST),       E(ENODEV),
    E(ENOTDIR),      E(EISDIR),          E(EINVAL),       E(ENFILE),
    E(EMFILE),       E(ETXTBSY),         E(EFBIG),        E(ENOSPC),
    E(ESPIPE),       E(EROFS),           E(EMLINK),       E(EPIPE),
    E(ERANGE),       E(EDEADLK),         E(ENAMETOOLONG), E(ENOSYS),
    E(ENOTEMPTY),    E(ELOOP),           E(EOVERFLOW),    E(ENOTSOCK),
    E(EDESTADDRREQ), E(EMSGSIZE),        E(EPROTOTYPE),   E(EPROTONOSUPPORT),
    E(EOPNOTSUPP),   E(EAFNOSUPPORT),    E(EADDRINUSE),   E(EADDRNOTAVAIL),
    E(ENETDOWN),     E(ECONNABORTED),    E(ECONNRESET),   E(ENOBUFS),
    E(EISCONN),      E(ENOTCONN),        E(ETIMEDOUT),    E(ECONNREFUSED),
    E(EHOSTUNREACH), E(EALREADY),        E(EINPROGRESS),  E(EPROTO),
#undef E
};

const char *xw_errno_name(int err, char *buf, unsigned len) {
  for (size_t i = 0; i < sizeof errno_names / sizeof errno_names[0]; i++)
    if (errno_names[i].num == err) return errno_names[i].name;
  snprintf(buf, len, "E%d", err);
  return buf;
}

static void set_str(napi_env env, napi_value obj, const char *key,
                    const char *val) {
  napi_value v;
  if (napi_create_string_utf8(env, val, NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, obj, key, v);
}

static napi_value throw_sys(napi_env env, int err, const char *syscall,
                            const char *detail, int range) {
  char nbuf[16], msg[512];
  const char *code = xw_errno_name(err, nbuf, sizeof nbuf);
  if (detail)
    snprintf(msg, sizeof msg, "%s failed: %s (%s)", syscall, detail, code);
  else
    snprintf(msg, sizeof msg, "%s failed: %s (%s)", syscall, strerror(err),
             code);

  napi_value jcode, jmsg, error, jerrno;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &jcode) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg) != napi_ok)
    return NULL;
  napi_status st = range ? napi_create_range_error(env, jcode, jmsg, &error)
                         : napi_create_error(env, jcode, jmsg, &error);
  if (st != napi_ok) return NULL;
  /* Positive errno, as in os.constants.errno (Node's own fs/net errors carry
   * libuv's negated value; `code` is what callers should compare). */
  if (napi_create_int32(env, err, &jerrno) == napi_ok)
    napi_set_named_property(env, error, "errno", jerrno);
  set_str(env, error, "syscall", syscall);
  napi_throw(env, error);
  return NULL;
}

napi_value xw_throw_errno(napi_env env, int err, const char *syscall) {
  return throw_sys(env, err, syscall, NULL, 0);
}

napi_value xw_throw_errno_msg(napi_env env, int err, const char *syscall,
                              const char *detail) {
  return throw_sys(env, err, syscall, detail, 0);
}

napi_value xw_throw_errno_range(napi_env env, int err, const char *syscall,
                                const char *detail) {
  return throw_sys(env, err, syscall, detail, 1);
}

enum kind { KIND_TYPE, KIND_VALUE, KIND_RANGE };

static napi_value throw_arg(napi_env env, enum kind kind, const char *fmt,
                            va_list ap) {
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  switch (kind) {
  case KIND_TYPE:
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    break;
  case KIND_VALUE:
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
    break;
  case KIND_RANGE:
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    break;
  }
  return NULL;
}

napi_value xw_throw_type(napi_env env, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  throw_arg(env, KIND_TYPE, fmt, ap);
  va_end(ap);
  return NULL;
}

napi_value xw_throw_value(napi_env env, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  throw_arg(env, KIND_VALUE, fmt, ap);
  va_end(ap);
  return NULL;
}

napi_value xw_throw_range(napi_env env, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  throw_arg(env, KIND_RANGE, fmt, ap);
  va_end(ap);
  return NULL;
}

void xw_report_pending_exception(napi_env env) {
  bool pending = false;
  napi_value exc;
  if (napi_is_exception_pending(env, &pending) != napi_ok || !pending) return;
  if (napi_get_and_clear_last_exception(env, &exc) != napi_ok) return;
  /* During environment teardown calls into JS are refused and nothing is
   * pending but `undefined`; there is nobody left to tell. */
  napi_valuetype t;
  if (napi_typeof(env, exc, &t) == napi_ok && t == napi_undefined) return;
  napi_fatal_exception(env, exc);
}
