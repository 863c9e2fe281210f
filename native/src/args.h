/* Argument validation for bindings. Every helper either stores a value and
 * returns true, or throws (TypeError / RangeError with Node's ERR_* code) and
 * returns false. Bindings validate everything before the first syscall. */
#ifndef XWAY_ARGS_H
#define XWAY_ARGS_H

#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* napi_get_cb_info into a fixed array (missing arguments read as
 * `undefined`, so they fail the type checks below). */
bool xw_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv,
             napi_value *self);

/* An integer-valued number in [min, max]. */
bool xw_arg_int(napi_env env, napi_value v, const char *name, int64_t min,
                int64_t max, int64_t *out);

/* A file descriptor number (0 .. INT_MAX). Whether it is open is the
 * kernel's call and comes back as EBADF. */
bool xw_arg_fd(napi_env env, napi_value v, const char *name, int *out);

bool xw_arg_function(napi_env env, napi_value v, const char *name);

/* A Uint8Array over a whole SharedArrayBuffer (byte offset 0) whose data is
 * page aligned: the only kind of view we are willing to mmap over, because
 * a shared WebAssembly.Memory is its own page-aligned reservation and never
 * moves. */
bool xw_arg_shared_view(napi_env env, napi_value v, const char *name,
                        uint8_t **base, size_t *len);

/* Any ArrayBufferView (Buffer, Uint8Array, other TypedArray, DataView). */
bool xw_arg_bytes(napi_env env, napi_value v, const char *name, void **data,
                  size_t *len);

/* A string without NUL bytes whose UTF-8 form (plus the terminator) fits in
 * cap bytes. */
bool xw_arg_path(napi_env env, napi_value v, const char *name, char *buf,
                 size_t cap);

/* Small helpers for building results. */
bool xw_set_int(napi_env env, napi_value obj, const char *key, int64_t v);
bool xw_set_method(napi_env env, napi_value obj, const char *key,
                   napi_callback fn, void *data);

#endif
