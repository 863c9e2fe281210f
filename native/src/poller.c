/* RingPoller: watching ring words from the event loop, without a JS turn per
 * look.
 *
 * A ring socket that cannot progress may poll its ring for a short while
 * before it announces a wait and sleeps (src/socket/poll-policy.ts). Polling
 * from JS costs an event-loop turn and a JS entry per look (about 2 us here);
 * here a look is two loads. The socket asks for a watch: "tell me when the
 * word at A is no longer a, or the word at B no longer b". While any watch is
 * open, a uv_idle_t keeps the loop from blocking in epoll, and its callback
 * looks at every watch, yielding the CPU between looks (sched_yield: a peer
 * waiting for this vCPU runs instead of waiting behind us), for at most
 * SLICE_NS per loop turn so that other I/O is not held up. Finished watches
 * are reported in one JS call per turn.
 *
 * The budget is CPU time, not wall time: what this thread spent looking
 * (CLOCK_THREAD_CPUTIME_ID over the slices), so that time handed to a peer
 * on the same vCPU by sched_yield costs nothing, and time spinning beside a
 * peer on another vCPU costs what it costs. A watch also ends after
 * WALL_MAX_NS of wall time, and all of them end at once
 * when a yield comes back late with nothing changed (CONTENDED): some other
 * program holds this vCPU, and sleeping serves everyone better than waiting
 * for our turn again (the scheduler puts a woken sleeper ahead of the
 * programs that ran meanwhile, and a yielder behind them). A change found
 * after such a yield is CHANGED_LATE, so the socket can poll less.
 *
 * The idle handle is never ref'd: a poll does not keep the process alive,
 * whatever keeps the connection alive does (as today's setImmediate polls
 * did not either, once their socket was unref'd).
 *
 * Untrusted peer: only the two words are read, at addresses checked against
 * the registered memory (the whole shared memory as this process maps it);
 * their values are compared, never used as addresses or lengths.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <uv.h>

#include "addon.h"
#include "args.h"
#include "errors.h"

/* Longest stretch one loop turn spends looking before it lets libuv run
 * timers and I/O again. */
#define SLICE_NS 20000ull
#define MAX_BUDGET_NS 10000000ull
#define MAX_WATCHES 65536
/* A watch lasts at most this long in wall time, whatever its CPU budget: while
 * yields run a peer on this vCPU the watch costs nothing, but a reply that
 * slow is better met asleep. */
#define WALL_MAX_NS 1000000ull
/* A sched_yield that takes this long ran someone else meanwhile. */
#define HANDED_OFF_NS 5000ull
/* A sched_yield that takes this long ran someone else for a time slice. */
#define LONG_YIELD_NS 100000ull

enum { EXPIRED = 0, CHANGED = 1, CONTENDED = 2, CHANGED_LATE = 3 };

typedef struct {
  int32_t id;
  bool used;
  const uint32_t *a, *b;
  uint32_t va, vb;
  uint64_t budget;   /* CPU ns this watch may spend */
  uint64_t spent;    /* CPU ns spent looking so far */
  uint64_t deadline; /* wall clock (uv_hrtime) */
} watch_t;

/* A shared memory words may be watched in: registered once (addMemory), held
 * for good (so it cannot be collected under a watch), known by its base. */
typedef struct {
  uint8_t *base;
  size_t len;
  napi_ref ref;
} memory_t;

#define MAX_MEMORIES 64

typedef struct {
  napi_env env;
  uv_idle_t idle;
  napi_ref self, cb;
  napi_async_context actx;
  napi_async_cleanup_hook_handle hook;
  watch_t *w;
  uint32_t cap, used; /* entries allocated, entries in use */
  int32_t *done;      /* (id, status, CPU ns) triples of one report */
  memory_t mem[MAX_MEMORIES];
  uint32_t nmem;
  bool running, closed, uv_closed, finalized;
} poller_t;

static void poller_free(poller_t *p) {
  free(p->w);
  free(p->done);
  free(p);
}

static void end_watch(poller_t *p, watch_t *w) {
  w->used = false;
  p->used--;
}

static void stop(poller_t *p) {
  if (p->running) {
    uv_idle_stop(&p->idle);
    p->running = false;
  }
}

static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Reports `w` (`cpu`: what this slice has cost so far). */
static void finish(poller_t *p, watch_t *w, uint32_t *ndone, int status, uint64_t cpu) {
  int32_t *d = &p->done[3 * *ndone];
  uint64_t spent = w->spent + cpu;
  d[0] = w->id;
  d[1] = status;
  d[2] = spent > INT32_MAX ? INT32_MAX : (int32_t)spent;
  (*ndone)++;
  end_watch(p, w);
}

static void on_idle(uv_idle_t *h) {
  poller_t *p = h->data;
  if (p->closed) return;
  uint64_t start = uv_hrtime(), now = start;
  uint64_t cpu0 = thread_cpu_ns(), cpu = 0, handed = 0;
  uint32_t ndone = 0;
  bool contended = false;
  for (;;) {
    for (uint32_t i = 0; i < p->cap; i++) {
      watch_t *w = &p->w[i];
      if (!w->used) continue;
      bool changed = __atomic_load_n(w->a, __ATOMIC_ACQUIRE) != w->va ||
                     __atomic_load_n(w->b, __ATOMIC_ACQUIRE) != w->vb;
      if (changed) finish(p, w, &ndone, contended ? CHANGED_LATE : CHANGED, cpu);
      else if (contended) finish(p, w, &ndone, CONTENDED, cpu);
      else if (w->spent + cpu >= w->budget || now >= w->deadline) finish(p, w, &ndone, EXPIRED, cpu);
    }
    if (ndone > 0 || p->used == 0) break;
    if (now - start >= SLICE_NS) break;
    uint64_t before = uv_hrtime();
    sched_yield();
    now = uv_hrtime();
    contended = now - before >= LONG_YIELD_NS;
    /* Within a slice the cost is estimated without a system call: the wall time,
     * less what long yields handed to others (a yield that came back at once
     * cost its own length). The slice's real CPU time is charged at its end. */
    uint64_t took = now - before;
    if (took >= HANDED_OFF_NS) handed += took;
    cpu = now - start - handed;
  }
  /* What this slice cost, shared by the watches still open: one look served
   * them all, and a busy server's many connections must not each pay for
   * the whole of it. */
  if (p->used > 0) {
    cpu = (thread_cpu_ns() - cpu0) / p->used;
    for (uint32_t i = 0; i < p->cap; i++)
      if (p->w[i].used) p->w[i].spent += cpu;
  }
  if (p->used == 0) stop(p);
  if (ndone == 0) return;

  napi_env env = p->env;
  napi_handle_scope scope;
  napi_value arr, v, recv, fn;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (napi_create_array_with_length(env, 3 * ndone, &arr) == napi_ok &&
      napi_get_reference_value(env, p->cb, &fn) == napi_ok && fn &&
      napi_get_reference_value(env, p->self, &recv) == napi_ok && recv) {
    for (uint32_t i = 0; i < 3 * ndone; i++)
      if (napi_create_int32(env, p->done[i], &v) == napi_ok) napi_set_element(env, arr, i, v);
    if (napi_make_callback(env, p->actx, recv, fn, 1, &arr, NULL) != napi_ok)
      xw_report_pending_exception(env);
  }
  napi_close_handle_scope(env, scope);
}

static void on_uv_close(uv_handle_t *h) {
  poller_t *p = h->data;
  napi_async_cleanup_hook_handle hook = p->hook;
  p->hook = NULL;
  p->uv_closed = true;
  bool free_now = p->finalized;
  if (free_now) poller_free(p);
  if (hook) napi_remove_async_cleanup_hook(hook);
}

static void poller_close(poller_t *p) {
  if (p->closed) return;
  p->closed = true;
  stop(p);
  for (uint32_t i = 0; i < p->cap; i++)
    if (p->w[i].used) end_watch(p, &p->w[i]);
  for (uint32_t i = 0; i < p->nmem; i++) napi_delete_reference(p->env, p->mem[i].ref);
  p->nmem = 0;
  if (p->cb) napi_delete_reference(p->env, p->cb);
  if (p->self) napi_delete_reference(p->env, p->self);
  p->cb = p->self = NULL;
  if (p->actx) napi_async_destroy(p->env, p->actx);
  p->actx = NULL;
  uv_close((uv_handle_t *)&p->idle, on_uv_close);
}

static void on_env_teardown(napi_async_cleanup_hook_handle hook, void *arg) {
  (void)hook;
  poller_close(arg);
}

static void poller_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  poller_t *p = data;
  p->finalized = true;
  if (!p->closed) poller_close(p); /* frees in on_uv_close */
  else if (p->uv_closed) poller_free(p);
}

static poller_t *this_poller(napi_env env, napi_callback_info info, size_t n,
                             napi_value *argv) {
  napi_value self;
  void *data = NULL;
  if (!xw_args(env, info, n, argv, &self)) return NULL;
  if (napi_unwrap(env, self, &data) != napi_ok || !data) {
    xw_throw_type(env, "Illegal invocation: not a RingPoller");
    return NULL;
  }
  poller_t *p = data;
  if (p->closed) {
    xw_throw_errno_msg(env, EBADF, "watch", "the poller is closed");
    return NULL;
  }
  return p;
}

/* new RingPoller(onDone) — onDone([id, status, cpuNs, id, status, cpuNs, ...])
 * with status 1: a word changed, 3: it changed but was seen after a late
 * yield, 0: the budget ran out, 2: this vCPU is contended; cpuNs: what the
 * watch cost. */
static napi_value poller_new(napi_env env, napi_callback_info info) {
  napi_value argv[1], self, name;
  size_t argc = 1;
  uv_loop_t *loop;
  if (napi_get_cb_info(env, info, &argc, argv, &self, NULL) != napi_ok) return NULL;
  if (!xw_arg_function(env, argv[0], "onDone")) return NULL;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok)
    return xw_throw_type(env, "no libuv loop for this environment");
  poller_t *p = calloc(1, sizeof *p);
  if (!p) return xw_throw_errno(env, ENOMEM, "calloc");
  p->env = env;
  p->idle.data = p;
  uv_idle_init(loop, &p->idle);
  uv_unref((uv_handle_t *)&p->idle);
  if (napi_wrap(env, self, p, poller_finalize, NULL, NULL) != napi_ok) {
    p->finalized = true; /* never wrapped: free on close */
    poller_close(p);
    return NULL;
  }
  if (napi_create_reference(env, argv[0], 1, &p->cb) != napi_ok ||
      napi_create_reference(env, self, 1, &p->self) != napi_ok ||
      napi_create_string_utf8(env, "XwayRingPoller", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, self, name, &p->actx) != napi_ok ||
      napi_add_async_cleanup_hook(env, on_env_teardown, p, &p->hook) != napi_ok) {
    poller_close(p);
    return xw_throw_type(env, "RingPoller setup failed");
  }
  return self;
}

static bool grow(poller_t *p) {
  uint32_t cap = p->cap ? p->cap * 2 : 16;
  if (cap > MAX_WATCHES) return false;
  watch_t *w = realloc(p->w, cap * sizeof *w);
  if (!w) return false;
  p->w = w;
  int32_t *done = realloc(p->done, 3 * cap * sizeof *done);
  if (!done) return false;
  p->done = done;
  for (uint32_t i = p->cap; i < cap; i++) w[i] = (watch_t){0};
  p->cap = cap;
  return true;
}

/* addMemory(view) -> index: `view` a Uint8Array over a whole shared memory;
 * the same memory (by its base) keeps its index, and its length grows with
 * the longest view seen (a shared memory grows in place). */
static napi_value poller_add_memory(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  poller_t *p = this_poller(env, info, 1, argv);
  uint8_t *base;
  size_t len;
  uint32_t i;
  if (!p || !xw_arg_shared_view(env, argv[0], "memory", &base, &len)) return NULL;
  if (len < 4096) return xw_throw_range(env, "The memory is too small to hold a ring");
  for (i = 0; i < p->nmem && p->mem[i].base != base; i++) {}
  if (i == p->nmem) {
    if (p->nmem == MAX_MEMORIES) return xw_throw_range(env, "at most %d memories", MAX_MEMORIES);
    if (napi_create_reference(env, argv[0], 1, &p->mem[i].ref) != napi_ok) return NULL;
    p->mem[i].base = base;
    p->mem[i].len = 0;
    p->nmem++;
  }
  if (len > p->mem[i].len) p->mem[i].len = len;
  napi_create_uint32(env, i, &result);
  return result;
}

/* An integer in [0, max], read without the generic checks' cost: the hot
 * path of a poll. */
static bool arg_u32(napi_env env, napi_value v, const char *name, uint64_t max, uint64_t *out) {
  int64_t x;
  if (napi_get_value_int64(env, v, &x) != napi_ok || x < 0 || (uint64_t)x > max) {
    xw_throw_range(env, "The value of \"%s\" is out of range", name);
    return false;
  }
  *out = (uint64_t)x;
  return true;
}

/* watch(id, memoryIndex, addrA, valueA, addrB, valueB, budgetNs): budgetNs
 * of this thread's CPU time at most. */
static napi_value poller_watch(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  poller_t *p = this_poller(env, info, 7, argv);
  uint64_t id, m, a, va, b, vb, budget;
  if (!p) return NULL;
  if (!arg_u32(env, argv[0], "id", INT32_MAX, &id) ||
      !arg_u32(env, argv[1], "memoryIndex", p->nmem ? p->nmem - 1 : 0, &m) || m >= p->nmem ||
      !arg_u32(env, argv[2], "addrA", p->mem[m].len - 4, &a) ||
      !arg_u32(env, argv[3], "valueA", UINT32_MAX, &va) ||
      !arg_u32(env, argv[4], "addrB", p->mem[m].len - 4, &b) ||
      !arg_u32(env, argv[5], "valueB", UINT32_MAX, &vb) ||
      !arg_u32(env, argv[6], "budgetNs", MAX_BUDGET_NS, &budget)) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) xw_throw_range(env, "The value of \"memoryIndex\" is not a registered memory");
    return NULL;
  }
  if (a % 4 != 0 || b % 4 != 0) return xw_throw_range(env, "watched words must be 4-byte aligned");
  watch_t *w = NULL;
  for (uint32_t i = 0; i < p->cap && !w; i++)
    if (!p->w[i].used) w = &p->w[i];
  if (!w) {
    uint32_t at = p->cap;
    if (!grow(p)) return xw_throw_errno(env, ENOMEM, "watch");
    w = &p->w[at];
  }
  w->id = (int32_t)id;
  w->a = (const uint32_t *)(p->mem[m].base + a);
  w->b = (const uint32_t *)(p->mem[m].base + b);
  w->va = (uint32_t)va;
  w->vb = (uint32_t)vb;
  w->budget = budget;
  w->spent = 0;
  w->deadline = uv_hrtime() + WALL_MAX_NS;
  w->used = true;
  p->used++;
  if (!p->running) {
    uv_idle_start(&p->idle, on_idle);
    p->running = true;
  }
  return NULL;
}

/* cancel(id): forget a watch (no report). */
static napi_value poller_cancel(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  poller_t *p = this_poller(env, info, 1, argv);
  int64_t id;
  if (!p || !xw_arg_int(env, argv[0], "id", 0, INT32_MAX, &id)) return NULL;
  for (uint32_t i = 0; i < p->cap; i++)
    if (p->w[i].used && p->w[i].id == (int32_t)id) end_watch(p, &p->w[i]);
  if (p->used == 0) stop(p);
  return NULL;
}

bool xw_register_poller(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"addMemory", NULL, poller_add_memory, NULL, NULL, NULL, napi_default, NULL},
      {"watch", NULL, poller_watch, NULL, NULL, NULL, napi_default, NULL},
      {"cancel", NULL, poller_cancel, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls;
  return napi_define_class(env, "RingPoller", NAPI_AUTO_LENGTH, poller_new, NULL,
                           sizeof methods / sizeof methods[0], methods, &cls) == napi_ok &&
         napi_set_named_property(env, exports, "RingPoller", cls) == napi_ok;
}
