/* The life cycle shared by every native object that watches a descriptor
 * with libuv (EventChannel, the ctl listener, CtlSocket).
 *
 * Why a common base: a uv_poll_t must outlive uv_close() until its close
 * callback, the JS wrapper may be collected before or after that, and the
 * environment (a worker thread) may be torn down with the object still open.
 * Getting that right once is easier than three times.
 *
 * Rules:
 *  - While open, the object holds a strong reference to its JS wrapper (an
 *    active handle keeps its object alive, like net.Socket), and its
 *    callbacks.
 *  - xw_handle_close(): stop polling, let the subclass close descriptors
 *    (synchronously, so fds are gone when close() returns), drop references,
 *    uv_close(). Idempotent. No callbacks into JS afterwards.
 *  - Memory is freed when both the libuv close callback has run and the
 *    wrapper is finalized (or was never wrapped).
 *  - An async cleanup hook (Node-API 8) closes the object at environment
 *    teardown; Node waits for our uv_close to finish, so an exiting worker
 *    leaves neither descriptors nor handles behind.
 */
#ifndef XWAY_HANDLE_H
#define XWAY_HANDLE_H

#include <node_api.h>
#include <stdbool.h>
#include <uv.h>

typedef struct xw_handle xw_handle;

typedef struct {
  const char *name; /* async resource name, e.g. "XwayEventChannel" */
  /* Poll fired (status < 0 is a libuv error). Caller holds no scope. */
  void (*on_poll)(xw_handle *h, int status, int events);
  /* Close the object's descriptors; polling has already stopped. */
  void (*release)(xw_handle *h);
  /* Free the object (it embeds the xw_handle). */
  void (*destroy)(xw_handle *h);
} xw_handle_ops;

#define XW_MAX_CALLBACKS 2

struct xw_handle {
  const xw_handle_ops *ops;
  napi_env env;
  uv_poll_t poll;
  napi_ref self;
  napi_ref callbacks[XW_MAX_CALLBACKS];
  napi_async_context actx;
  napi_async_cleanup_hook_handle hook;
  bool wrapped;   /* napi_wrap succeeded: the finalizer will run */
  bool polling;   /* uv_poll_start active */
  bool closed;    /* close started: descriptors closed, no more callbacks */
  bool uv_closed; /* libuv close callback ran */
  bool finalized; /* wrapper finalizer ran */
};

/* Wrap `self`, take references to the callbacks, start polling `fd` for
 * `events`. On failure throws, undoes everything it did (calling
 * ops->release, so the subclass's descriptors are closed too) and returns
 * false; the struct is then freed through ops->destroy. */
bool xw_handle_init(xw_handle *h, const xw_handle_ops *ops, napi_env env,
                    napi_value self, const napi_value *callbacks, size_t ncb,
                    int fd, int events);

/* Fetch the handle behind `this`; throws and returns NULL for a foreign
 * object. Does not check `closed`. */
xw_handle *xw_handle_unwrap(napi_env env, napi_value self);

/* Stop polling without closing (e.g. after EOF): no further callbacks. The
 * references to the wrapper and callbacks are dropped so an abandoned object
 * can be collected; its finalizer then closes the descriptors. */
void xw_handle_stop(xw_handle *h);

void xw_handle_close(xw_handle *h);
void xw_handle_ref(xw_handle *h, bool ref);

/* Call callbacks[idx] via napi_make_callback (so nextTick and microtasks
 * run after it and async_hooks see the right context). The caller must have
 * opened a handle scope. An exception becomes an uncaught exception.
 * Returns false if the handle was closed (before or by the callback). */
bool xw_handle_call(xw_handle *h, int idx, size_t argc, napi_value *argv);

/* A napi_finalize suitable for napi_wrap of an xw_handle. */
void xw_handle_finalize(napi_env env, void *data, void *hint);

#endif
