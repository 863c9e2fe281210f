/* Bulk copies between a ring's shared memory and ordinary Buffers.
 *
 * Why native: V8 copies into or out of a SharedArrayBuffer with a relaxed
 * atomic memmove (about 10 GB/s here), C memcpy does about 30 GB/s. A
 * Node-API call costs some 70 ns, so the socket layer calls these only for
 * large copies and keeps small ones in JS (src/ring/bulk-copy.ts).
 *
 * Untrusted peer: every address and length is checked against the views the
 * caller passes (the memory as this process maps it, and the Buffer), never
 * against a number read from shared memory.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>

#include "addon.h"
#include "args.h"
#include "errors.h"

/* A view (Uint8Array over a SharedArrayBuffer) and a range in it. */
static bool arg_memory_range(napi_env env, napi_value view, napi_value at,
                             napi_value length, uint8_t **p, size_t *n) {
  void *base;
  size_t len;
  int64_t a, l;
  if (!xw_arg_bytes(env, view, "memory", &base, &len) ||
      !xw_arg_int(env, at, "address", 0, INT64_MAX / 2, &a) ||
      !xw_arg_int(env, length, "length", 0, INT64_MAX / 2, &l))
    return false;
  if ((uint64_t)a + (uint64_t)l > len) {
    xw_throw_range(env, "The range %lld + %lld is outside the memory (%zu bytes)",
                   (long long)a, (long long)l, len);
    return false;
  }
  *p = (uint8_t *)base + a;
  *n = (size_t)l;
  return true;
}

/* A Buffer and a range in it. */
static bool arg_buffer_range(napi_env env, napi_value buf, napi_value at,
                             size_t n, uint8_t **p) {
  void *base;
  size_t len;
  int64_t a;
  if (!xw_arg_bytes(env, buf, "buffer", &base, &len) ||
      !xw_arg_int(env, at, "offset", 0, INT64_MAX / 2, &a))
    return false;
  if ((uint64_t)a + n > len) {
    xw_throw_range(env, "The range %lld + %zu is outside the buffer (%zu bytes)",
                   (long long)a, n, len);
    return false;
  }
  *p = (uint8_t *)base + a;
  return true;
}

/* copyIn(memory, address, src, srcOffset, length): src -> memory. */
static napi_value copy_in(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  uint8_t *dst, *src;
  size_t n;
  if (!xw_args(env, info, 5, argv, NULL)) return NULL;
  if (!arg_memory_range(env, argv[0], argv[1], argv[4], &dst, &n) ||
      !arg_buffer_range(env, argv[2], argv[3], n, &src))
    return NULL;
  memcpy(dst, src, n);
  return NULL;
}

/* copyOut(memory, address, dst, dstOffset, length): memory -> dst. */
static napi_value copy_out(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  uint8_t *dst, *src;
  size_t n;
  if (!xw_args(env, info, 5, argv, NULL)) return NULL;
  if (!arg_memory_range(env, argv[0], argv[1], argv[4], &src, &n) ||
      !arg_buffer_range(env, argv[2], argv[3], n, &dst))
    return NULL;
  memcpy(dst, src, n);
  return NULL;
}

bool xw_register_copy(napi_env env, napi_value exports) {
  return xw_set_method(env, exports, "copyIn", copy_in, NULL) &&
         xw_set_method(env, exports, "copyOut", copy_out, NULL);
}
