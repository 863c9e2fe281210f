/* See handle.h for the life-cycle rules. */
#include "handle.h"

#include <stdlib.h>

#include "errors.h"

static void on_uv_close(uv_handle_t *uvh) {
  xw_handle *h = uvh->data;
  napi_async_cleanup_hook_handle hook = h->hook;
  h->hook = NULL;
  h->uv_closed = true;
  /* Decide before removing the hook: removing it may release the last
   * reference on the Node-API environment, whose teardown runs our
   * finalizer, which then frees `h` itself. */
  bool free_now = h->finalized || !h->wrapped;
  if (free_now) h->ops->destroy(h);
  if (hook) napi_remove_async_cleanup_hook(hook);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  xw_handle *h = p->data;
  if (h->closed) return;
  h->ops->on_poll(h, status, events);
}

static void on_env_teardown(napi_async_cleanup_hook_handle hook, void *arg) {
  (void)hook;
  /* on_uv_close removes the hook, which tells Node we are done. */
  xw_handle_close(arg);
}

bool xw_handle_init(xw_handle *h, const xw_handle_ops *ops, napi_env env,
                    napi_value self, const napi_value *callbacks, size_t ncb,
                    int fd, int events) {
  uv_loop_t *loop;
  int rc;
  h->ops = ops;
  h->env = env;
  h->poll.data = h;

  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    ops->release(h);
    ops->destroy(h);
    napi_throw_error(env, NULL, "no libuv loop for this environment");
    return false;
  }
  rc = uv_poll_init(loop, &h->poll, fd);
  if (rc != 0) {
    ops->release(h);
    ops->destroy(h);
    xw_throw_errno(env, -rc, "uv_poll_init");
    return false;
  }
  /* From here on failures go through xw_handle_close + uv_close. */
  napi_value name;
  if (napi_wrap(env, self, h, xw_handle_finalize, NULL, NULL) != napi_ok)
    goto fail;
  h->wrapped = true;
  if (napi_create_reference(env, self, 1, &h->self) != napi_ok) goto fail;
  for (size_t i = 0; i < ncb; i++)
    if (napi_create_reference(env, callbacks[i], 1, &h->callbacks[i]) !=
        napi_ok)
      goto fail;
  if (napi_create_string_utf8(env, ops->name, NAPI_AUTO_LENGTH, &name) !=
          napi_ok ||
      napi_async_init(env, self, name, &h->actx) != napi_ok)
    goto fail;
  if (napi_add_async_cleanup_hook(env, on_env_teardown, h, &h->hook) !=
      napi_ok)
    goto fail;
  rc = uv_poll_start(&h->poll, events, on_poll);
  if (rc != 0) {
    xw_handle_close(h);
    xw_throw_errno(env, -rc, "uv_poll_start");
    return false;
  }
  h->polling = true;
  return true;

fail:
  xw_handle_close(h);
  {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) napi_throw_error(env, NULL, "native object setup failed");
  }
  return false;
}

xw_handle *xw_handle_unwrap(napi_env env, napi_value self) {
  void *p = NULL;
  if (napi_unwrap(env, self, &p) != napi_ok || p == NULL) {
    xw_throw_type(env, "Illegal invocation: not an xway native object");
    return NULL;
  }
  return p;
}

static void drop_refs(xw_handle *h) {
  if (h->self) {
    napi_delete_reference(h->env, h->self);
    h->self = NULL;
  }
  for (int i = 0; i < XW_MAX_CALLBACKS; i++)
    if (h->callbacks[i]) {
      napi_delete_reference(h->env, h->callbacks[i]);
      h->callbacks[i] = NULL;
    }
}

void xw_handle_stop(xw_handle *h) {
  if (h->closed) return;
  if (h->polling) {
    uv_poll_stop(&h->poll);
    h->polling = false;
  }
  /* No callback can run any more, so holding them would only keep closures
   * (which often capture this very object) alive forever. */
  drop_refs(h);
}

void xw_handle_close(xw_handle *h) {
  if (h->closed) return;
  h->closed = true;
  /* libuv requires the poll to stop before its descriptor is closed. */
  if (h->polling) {
    uv_poll_stop(&h->poll);
    h->polling = false;
  }
  h->ops->release(h);
  drop_refs(h);
  if (h->actx) {
    napi_async_destroy(h->env, h->actx);
    h->actx = NULL;
  }
  uv_close((uv_handle_t *)&h->poll, on_uv_close);
}

void xw_handle_ref(xw_handle *h, bool ref) {
  if (h->closed) return;
  if (ref)
    uv_ref((uv_handle_t *)&h->poll);
  else
    uv_unref((uv_handle_t *)&h->poll);
}

bool xw_handle_call(xw_handle *h, int idx, size_t argc, napi_value *argv) {
  napi_env env = h->env;
  napi_value recv, fn;
  if (h->closed || !h->callbacks[idx]) return false;
  if (h->self == NULL || napi_get_reference_value(env, h->self, &recv) !=
                             napi_ok || recv == NULL)
    napi_get_undefined(env, &recv);
  if (napi_get_reference_value(env, h->callbacks[idx], &fn) != napi_ok ||
      fn == NULL)
    return !h->closed;
  if (napi_make_callback(env, h->actx, recv, fn, argc, argv, NULL) != napi_ok)
    xw_report_pending_exception(env);
  return !h->closed;
}

void xw_handle_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  xw_handle *h = data;
  h->finalized = true;
  if (!h->closed) {
    xw_handle_close(h); /* frees in on_uv_close */
    return;
  }
  if (h->uv_closed) h->ops->destroy(h);
}
