/* What each source file registers on the module's exports. */
#ifndef XWAY_ADDON_H
#define XWAY_ADDON_H

#include <node_api.h>
#include <stdbool.h>

/* Per-environment data (each worker thread loads its own instance). */
typedef struct {
  napi_ref listener_ctor; /* CtlListener class, for ctlListen() */
  unsigned char *recv_buf; /* one 64 KiB receive buffer, shared by all
                              CtlSockets of this thread (the data is copied
                              into a Buffer before any JS runs) */
} xw_instance;

xw_instance *xw_instance_get(napi_env env);

bool xw_register_segment(napi_env env, napi_value exports);
bool xw_register_evtchn(napi_env env, napi_value exports);
bool xw_register_ctl(napi_env env, napi_value exports);
bool xw_register_xen(napi_env env, napi_value exports);
bool xw_register_copy(napi_env env, napi_value exports);
bool xw_register_heap(napi_env env, napi_value exports);
bool xw_register_poller(napi_env env, napi_value exports);
bool xw_register_phases(napi_env env, napi_value exports);

#endif
