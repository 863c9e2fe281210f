/* JS error construction shared by every native file.
 *
 * System call failures become an `Error` shaped like Node's own system
 * errors (`code`, `errno`, `syscall`), so callers can switch on `err.code`
 * exactly as they do for `fs` or `net`. Argument problems become TypeError /
 * RangeError with Node's ERR_* codes. All helpers return NULL so a binding
 * can `return xw_throw_...(...)`.
 */
#ifndef XWAY_ERRORS_H
#define XWAY_ERRORS_H

#include <node_api.h>

/* "EINVAL" for 22, "E<num>" for numbers not in the table. */
const char *xw_errno_name(int err, char *buf, unsigned len);

/* Error: "<syscall> failed: <strerror> (<CODE>)", .code/.errno/.syscall. */
napi_value xw_throw_errno(napi_env env, int err, const char *syscall);

/* Same fields and message shape, with our own explanation instead of
 * strerror: for state errors detected before any syscall (a closed object,
 * an unknown port), reported with the errno the kernel would have used. */
napi_value xw_throw_errno_msg(napi_env env, int err, const char *syscall,
                              const char *detail);

/* Same fields, but a RangeError with our own message: for requests the kernel
 * would reject or mishandle that we refuse up front (e.g. a segment smaller
 * than the mapping, which would SIGBUS on first touch instead of failing). */
napi_value xw_throw_errno_range(napi_env env, int err, const char *syscall,
                                const char *detail);

/* TypeError, code ERR_INVALID_ARG_TYPE. printf-style message. */
napi_value xw_throw_type(napi_env env, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* TypeError, code ERR_INVALID_ARG_VALUE (right type, unusable value). */
napi_value xw_throw_value(napi_env env, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* RangeError, code ERR_OUT_OF_RANGE. printf-style message. */
napi_value xw_throw_range(napi_env env, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Report an exception left pending by a callback into JS as an uncaught
 * exception (what Node does for throws inside its own I/O callbacks). */
void xw_report_pending_exception(napi_env env);

#endif
