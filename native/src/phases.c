/* LoopPhases: JS callbacks from the libuv loop phases a TCP socket's events
 * come from.
 *
 * A TCP socket's reads arrive in the loop's poll phase and its 'close' in the
 * close phase, after the check phase (setImmediate) of the same turn. A ring
 * socket has no libuv handle of its own, so without help it can only say
 * "later" with setImmediate, which puts its events one phase or one turn off
 * TCP's: programs that race a 1 ms timer against 'close', or an fs callback
 * against a read, see the difference (docs/register.md).
 *
 *   poll():     one call of onPoll() in the loop's next poll phase, where a
 *               read that libuv would deliver is delivered: this turn's if
 *               asked before it, else the next turn's. One call per request,
 *               each its own callback scope (the ticks and microtasks of one
 *               run before the next, as between two libuv read callbacks).
 *               The poll phase is reached through a uv_async_t: libuv
 *               delivers async sends from its poll (through the loop's own
 *               wake-up descriptor, so this adds none), ref'd only while
 *               calls are due. A uv_prepare_t (just before the poll) tells
 *               requests made before this turn's poll from those made in
 *               it: an async sent from another async callback of the same
 *               poll may run in that very pass, and those must wait.
 *   turn:       an Int32Array whose word 0 a uv_check_t counts up once per
 *               loop turn, right after the poll phase, so JS can tell "the
 *               poll phase just gone" without a call (a socket is read once
 *               per poll, as epoll reports it).
 *   close(id):  a handle closed now, so that onClose(id) runs in this turn's
 *               close phase, exactly where uv_close puts a TCP handle's close
 *               callback (in the order libuv runs them).
 *
 * A pending close keeps the loop alive, as a closing TCP handle does; a
 * pending poll request does too, as the setImmediate it replaces did.
 */
#include <errno.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdlib.h>
#include <uv.h>

#include "addon.h"
#include "args.h"
#include "errors.h"

typedef struct {
  napi_env env;
  uv_async_t async;
  uv_prepare_t prepare;
  uv_check_t check;     /* counts the turns */
  int32_t *turn;        /* word 0 of the `turn` array */
  napi_ref turn_ref;
  napi_ref self, on_poll, on_close;
  napi_async_context actx;
  napi_async_cleanup_hook_handle hook;
  uint32_t due_now;     /* onPoll() calls for this turn's poll phase */
  uint32_t due_next;    /* onPoll() calls asked for since this turn's prepare */
  uint32_t closing;     /* close handles in flight */
  bool async_ready, prepare_ready, running, closed, finalized;
  int uv_open;          /* libuv handles of ours not closed yet */
} phases_t;

typedef struct {
  uv_check_t handle; /* never started: only closed */
  phases_t *p;
  int32_t id;
} close_t;

static void phases_free_if_done(phases_t *p) {
  if (p->finalized && p->uv_open == 0 && p->closing == 0) free(p);
}

static void call(phases_t *p, napi_ref which, napi_value arg, bool with_arg) {
  napi_env env = p->env;
  napi_handle_scope scope;
  napi_value fn, recv;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (napi_get_reference_value(env, which, &fn) == napi_ok && fn &&
      napi_get_reference_value(env, p->self, &recv) == napi_ok && recv) {
    if (napi_make_callback(env, p->actx, recv, fn, with_arg ? 1 : 0, with_arg ? &arg : NULL, NULL) !=
        napi_ok)
      xw_report_pending_exception(env);
  }
  napi_close_handle_scope(env, scope);
}

static void on_prepare(uv_prepare_t *h) {
  phases_t *p = h->data;
  p->due_now += p->due_next;
  p->due_next = 0;
}

static void on_check(uv_check_t *h) {
  phases_t *p = h->data;
  if (p->turn) *p->turn += 1;
}

static void on_async(uv_async_t *h) {
  phases_t *p = h->data;
  uint32_t n = p->due_now;
  p->due_now = 0;
  for (uint32_t i = 0; i < n && !p->closed; i++) call(p, p->on_poll, NULL, false);
  if (p->closed) return;
  if (p->due_now + p->due_next > 0) {
    uv_async_send(&p->async); /* the next poll: this pass has gone past us */
  } else if (p->running) {
    uv_unref((uv_handle_t *)&p->async);
    p->running = false;
  }
}

static void on_closed(uv_handle_t *h) {
  close_t *c = h->data;
  phases_t *p = c->p;
  p->closing--;
  if (!p->closed) {
    napi_handle_scope scope;
    napi_value id;
    if (napi_open_handle_scope(p->env, &scope) == napi_ok) {
      if (napi_create_int32(p->env, c->id, &id) == napi_ok) call(p, p->on_close, id, true);
      napi_close_handle_scope(p->env, scope);
    }
  }
  free(c);
  phases_free_if_done(p);
}

static void on_uv_close(uv_handle_t *h) {
  phases_t *p = h->data;
  if (--p->uv_open > 0) return;
  napi_async_cleanup_hook_handle hook = p->hook;
  p->hook = NULL;
  phases_free_if_done(p);
  if (hook) napi_remove_async_cleanup_hook(hook);
}

static void on_uv_close_none(phases_t *p) {
  napi_async_cleanup_hook_handle hook = p->hook;
  p->hook = NULL;
  phases_free_if_done(p);
  if (hook) napi_remove_async_cleanup_hook(hook);
}

static void phases_close(phases_t *p) {
  if (p->closed) return;
  p->closed = true;
  if (p->prepare_ready) {
    uv_prepare_stop(&p->prepare);
    uv_check_stop(&p->check);
  }
  p->running = false;
  if (p->turn_ref) napi_delete_reference(p->env, p->turn_ref);
  p->turn_ref = NULL;
  p->turn = NULL;
  if (p->on_poll) napi_delete_reference(p->env, p->on_poll);
  if (p->on_close) napi_delete_reference(p->env, p->on_close);
  if (p->self) napi_delete_reference(p->env, p->self);
  p->on_poll = p->on_close = p->self = NULL;
  if (p->actx) napi_async_destroy(p->env, p->actx);
  p->actx = NULL;
  p->uv_open = (p->async_ready ? 1 : 0) + (p->prepare_ready ? 2 : 0);
  if (p->prepare_ready) {
    uv_close((uv_handle_t *)&p->prepare, on_uv_close);
    uv_close((uv_handle_t *)&p->check, on_uv_close);
  }
  if (p->async_ready) uv_close((uv_handle_t *)&p->async, on_uv_close);
  if (p->uv_open == 0) on_uv_close_none(p);
}

static void on_env_teardown(napi_async_cleanup_hook_handle hook, void *arg) {
  (void)hook;
  phases_close(arg);
}

static void phases_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  phases_t *p = data;
  p->finalized = true;
  if (!p->closed) phases_close(p); /* frees once every handle has closed */
  else phases_free_if_done(p);
}

static phases_t *this_phases(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  napi_value self;
  void *data = NULL;
  if (!xw_args(env, info, n, argv, &self)) return NULL;
  if (napi_unwrap(env, self, &data) != napi_ok || !data) {
    xw_throw_type(env, "Illegal invocation: not a LoopPhases");
    return NULL;
  }
  phases_t *p = data;
  if (p->closed) {
    xw_throw_errno_msg(env, EBADF, "phases", "the environment is shutting down");
    return NULL;
  }
  return p;
}

/* new LoopPhases(onPoll, onClose) */
static napi_value phases_new(napi_env env, napi_callback_info info) {
  napi_value argv[2], self, name;
  size_t argc = 2;
  uv_loop_t *loop;
  if (napi_get_cb_info(env, info, &argc, argv, &self, NULL) != napi_ok) return NULL;
  if (!xw_arg_function(env, argv[0], "onPoll") || !xw_arg_function(env, argv[1], "onClose"))
    return NULL;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok)
    return xw_throw_type(env, "no libuv loop for this environment");
  phases_t *p = calloc(1, sizeof *p);
  if (!p) return xw_throw_errno(env, ENOMEM, "calloc");
  p->env = env;
  p->async.data = p;
  int err = uv_async_init(loop, &p->async, on_async);
  if (err != 0) {
    free(p);
    return xw_throw_errno(env, -err, "uv_async_init");
  }
  uv_unref((uv_handle_t *)&p->async);
  p->async_ready = true;
  p->prepare.data = p;
  uv_prepare_init(loop, &p->prepare);
  uv_unref((uv_handle_t *)&p->prepare);
  uv_prepare_start(&p->prepare, on_prepare);
  p->check.data = p;
  uv_check_init(loop, &p->check);
  uv_unref((uv_handle_t *)&p->check);
  uv_check_start(&p->check, on_check);
  p->prepare_ready = true;
  if (napi_wrap(env, self, p, phases_finalize, NULL, NULL) != napi_ok) {
    p->finalized = true; /* never wrapped: free on close */
    phases_close(p);
    return NULL;
  }
  if (napi_create_reference(env, argv[0], 1, &p->on_poll) != napi_ok ||
      napi_create_reference(env, argv[1], 1, &p->on_close) != napi_ok ||
      napi_create_reference(env, self, 1, &p->self) != napi_ok ||
      napi_create_string_utf8(env, "XwayLoopPhases", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, self, name, &p->actx) != napi_ok ||
      napi_add_async_cleanup_hook(env, on_env_teardown, p, &p->hook) != napi_ok) {
    phases_close(p);
    return xw_throw_type(env, "LoopPhases setup failed");
  }
  napi_value ab, view;
  void *data;
  if (napi_create_arraybuffer(env, sizeof(int32_t), &data, &ab) != napi_ok ||
      napi_create_reference(env, ab, 1, &p->turn_ref) != napi_ok ||
      napi_create_typedarray(env, napi_int32_array, 1, ab, 0, &view) != napi_ok ||
      napi_set_named_property(env, self, "turn", view) != napi_ok) {
    phases_close(p);
    return xw_throw_type(env, "LoopPhases setup failed");
  }
  p->turn = data;
  *p->turn = 0;
  return self;
}

/* poll(): one onPoll() in the next poll phase. */
static napi_value phases_poll(napi_env env, napi_callback_info info) {
  phases_t *p = this_phases(env, info, 0, NULL);
  if (!p) return NULL;
  if (p->due_now + p->due_next++ == 0) {
    int err = uv_async_send(&p->async);
    if (err != 0) {
      p->due_next--;
      return xw_throw_errno(env, -err, "uv_async_send");
    }
  }
  if (!p->running) {
    uv_ref((uv_handle_t *)&p->async);
    p->running = true;
  }
  return NULL;
}

/* close(id): onClose(id) in this turn's close phase. */
static napi_value phases_close_soon(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  phases_t *p = this_phases(env, info, 1, argv);
  int64_t id;
  uv_loop_t *loop;
  if (!p || !xw_arg_int(env, argv[0], "id", 0, INT32_MAX, &id)) return NULL;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok)
    return xw_throw_type(env, "no libuv loop for this environment");
  close_t *c = malloc(sizeof *c);
  if (!c) return xw_throw_errno(env, ENOMEM, "malloc");
  c->p = p;
  c->id = (int32_t)id;
  c->handle.data = c;
  uv_check_init(loop, &c->handle);
  p->closing++;
  uv_close((uv_handle_t *)&c->handle, on_closed);
  return NULL;
}

bool xw_register_phases(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"poll", NULL, phases_poll, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, phases_close_soon, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls;
  return napi_define_class(env, "LoopPhases", NAPI_AUTO_LENGTH, phases_new, NULL,
                           sizeof methods / sizeof methods[0], methods, &cls) == napi_ok &&
         napi_set_named_property(env, exports, "LoopPhases", cls) == napi_ok;
}
