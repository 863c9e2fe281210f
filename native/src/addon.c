/* Module entry point: reports whether the host platform is available and,
 * on Linux, registers segments, event channels and control sockets. */
#include <node_api.h>
#include <stdbool.h>
#include <stdlib.h>

#ifdef XWAY_HOST_LINUX
#include "addon.h"

static void instance_free(napi_env env, void *data, void *hint) {
  (void)hint;
  xw_instance *inst = data;
  if (inst->listener_ctor) napi_delete_reference(env, inst->listener_ctor);
  free(inst->recv_buf);
  free(inst);
}

xw_instance *xw_instance_get(napi_env env) {
  void *data = NULL;
  napi_get_instance_data(env, &data);
  return data;
}
#else
/* Built elsewhere so that loading works and the JS layer can fall back. */
#if defined(__APPLE__)
#define XWAY_OS "macOS"
#elif defined(_WIN32)
#define XWAY_OS "Windows"
#elif defined(__FreeBSD__)
#define XWAY_OS "FreeBSD"
#else
#define XWAY_OS "this operating system"
#endif
#endif

static bool set_value(napi_env env, napi_value exports, const char *key,
                      napi_value v) {
  return napi_set_named_property(env, exports, key, v) == napi_ok;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value available, reason;
#ifdef XWAY_HOST_LINUX
  xw_instance *inst = calloc(1, sizeof *inst);
  if (!inst || napi_set_instance_data(env, inst, instance_free, NULL) !=
                   napi_ok) {
    free(inst);
    napi_throw_error(env, NULL, "xway: cannot allocate instance data");
    return NULL;
  }
  napi_get_boolean(env, true, &available);
  napi_get_null(env, &reason);
  if (!set_value(env, exports, "platformAvailable", available) ||
      !set_value(env, exports, "unavailableReason", reason) ||
      !xw_register_segment(env, exports) || !xw_register_evtchn(env, exports) ||
      !xw_register_ctl(env, exports) || !xw_register_xen(env, exports) ||
      !xw_register_copy(env, exports) || !xw_register_heap(env, exports) ||
      !xw_register_poller(env, exports) ||
      !xw_register_phases(env, exports)) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) napi_throw_error(env, NULL, "xway: module init failed");
    return NULL;
  }
#else
  napi_get_boolean(env, false, &available);
  napi_create_string_utf8(env,
                          "host platform needs Linux (memfd_create, eventfd, "
                          "epoll, SCM_RIGHTS, SO_PEERCRED); running on " XWAY_OS,
                          NAPI_AUTO_LENGTH, &reason);
  if (!set_value(env, exports, "platformAvailable", available) ||
      !set_value(env, exports, "unavailableReason", reason))
    return NULL;
#endif
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
