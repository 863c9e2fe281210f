/* EventChannel: Xen-evtchn-like notification ports for the host platform.
 *
 * Each local port is an eventfd registered in one epoll set; the epoll fd is
 * watched by a single uv_poll_t, so any number of ports costs one libuv
 * handle and one wake-up per loop turn. The peer gets our eventfd (over the
 * control socket) and signals the port by writing to it; we signal the peer
 * through the eventfd it sent us ("bind"). Nothing here ever blocks the event
 * loop: all descriptors are non-blocking and epoll_wait uses timeout 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "addon.h"
#include "args.h"
#include "errors.h"
#include "handle.h"

/* Ports are array indices; the cap only bounds memory for a runaway
 * caller (each port is two descriptors anyway). */
#define MAX_PORTS 65535
/* Bound the work of one loop turn so a peer that signals without pause
 * cannot starve other handles; the epoll fd stays readable, so the next turn
 * picks up the rest. */
#define MAX_ROUNDS 16
#define EVENTS_PER_ROUND 64

typedef struct {
  int local;     /* our eventfd, -1 when the port is free */
  int remote;    /* peer's eventfd we notify, -1 until bound */
  uint32_t seen; /* turn in which the port was last reported */
} port_t;

typedef struct {
  xw_handle h; /* first: the handle code frees us through it */
  int epfd;
  port_t *ports; /* index = port number; [0] unused */
  uint32_t *fired;
  uint32_t cap; /* entries in ports[] */
  uint32_t turn;
  uint32_t open;   /* ports allocated */
  uint32_t single; /* the port, while exactly one is allocated */
} evtchn_t;

enum { CB_EVENTS };

static void evtchn_on_poll(xw_handle *h, int status, int events);
static void evtchn_release(xw_handle *h);
static void evtchn_destroy(xw_handle *h);

static const xw_handle_ops evtchn_ops = {
    .name = "XwayEventChannel",
    .on_poll = evtchn_on_poll,
    .release = evtchn_release,
    .destroy = evtchn_destroy,
};

static void evtchn_on_poll(xw_handle *h, int status, int events) {
  (void)events;
  evtchn_t *ch = (evtchn_t *)h;
  struct epoll_event evs[EVENTS_PER_ROUND];
  uint32_t nfired = 0;
  if (status < 0) return; /* epoll fds do not fail; nothing to report */

  /* Batch: everything that fired by the time we look is reported in one
   * callback, each port once, however often the peer signalled it. */
  ch->turn++;
  if (ch->open == 1) {
    /* One port (a process with one link, the common case): it is the one
     * that fired, so read it without asking the epoll set which — one
     * system call per wake-up instead of two. Reading resets it, and the
     * set stops being readable with it. */
    uint64_t count;
    if (read(ch->ports[ch->single].local, &count, sizeof count) == sizeof count)
      ch->fired[nfired++] = ch->single;
  } else for (int round = 0; round < MAX_ROUNDS; round++) {
    int n = epoll_wait(ch->epfd, evs, EVENTS_PER_ROUND, 0);
    if (n <= 0) break;
    for (int i = 0; i < n; i++) {
      uint32_t port = evs[i].data.u32;
      if (port == 0 || port >= ch->cap || ch->ports[port].local < 0) continue;
      uint64_t count;
      /* Reset the counter so the fd stops being readable (level
       * triggered); EAGAIN just means it was already drained. */
      ssize_t r = read(ch->ports[port].local, &count, sizeof count);
      (void)r;
      if (ch->ports[port].seen != ch->turn) {
        ch->ports[port].seen = ch->turn;
        ch->fired[nfired++] = port;
      }
    }
    /* A short batch took everything ready: asking again would cost a
     * system call per wake-up to hear "nothing". What arrives later makes
     * the epoll fd readable, and libuv's poll reports it. */
    if (n < EVENTS_PER_ROUND) break;
  }
  if (nfired == 0) return;

  napi_env env = h->env;
  napi_handle_scope scope;
  napi_value arr, v;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (napi_create_array_with_length(env, nfired, &arr) == napi_ok) {
    for (uint32_t i = 0; i < nfired; i++)
      if (napi_create_uint32(env, ch->fired[i], &v) == napi_ok)
        napi_set_element(env, arr, i, v);
    xw_handle_call(h, CB_EVENTS, 1, &arr);
  }
  napi_close_handle_scope(env, scope);
}

static void close_port(evtchn_t *ch, uint32_t port) {
  port_t *p = &ch->ports[port];
  /* Explicit EPOLL_CTL_DEL: epoll forgets an fd only when every descriptor
   * of its open file is closed, and the peer holds a copy of this one. */
  if (p->local >= 0) {
    epoll_ctl(ch->epfd, EPOLL_CTL_DEL, p->local, NULL);
    close(p->local);
  }
  if (p->remote >= 0) close(p->remote);
  if (p->local >= 0 && --ch->open == 1) {
    ch->single = 0;
    for (uint32_t i = 1; i < ch->cap && !ch->single; i++)
      if (i != port && ch->ports[i].local >= 0) ch->single = i;
  }
  p->local = p->remote = -1;
}

static void evtchn_release(xw_handle *h) {
  evtchn_t *ch = (evtchn_t *)h;
  for (uint32_t i = 1; i < ch->cap; i++) close_port(ch, i);
  if (ch->epfd >= 0) close(ch->epfd);
  ch->epfd = -1;
}

static void evtchn_destroy(xw_handle *h) {
  evtchn_t *ch = (evtchn_t *)h;
  free(ch->ports);
  free(ch->fired);
  free(ch);
}

/* ---- JS methods ---- */

static evtchn_t *this_channel(napi_env env, napi_callback_info info,
                              size_t n, napi_value *argv, const char *syscall) {
  napi_value self;
  if (!xw_args(env, info, n, argv, &self)) return NULL;
  xw_handle *h = xw_handle_unwrap(env, self);
  if (!h) return NULL;
  if (h->ops != &evtchn_ops) {
    xw_throw_type(env, "Illegal invocation: not an EventChannel");
    return NULL;
  }
  if (h->closed && syscall) {
    xw_throw_errno_msg(env, EBADF, syscall, "event channel is closed");
    return NULL;
  }
  return (evtchn_t *)h;
}

/* Validates a port argument and that it is allocated. */
static port_t *arg_port(napi_env env, evtchn_t *ch, napi_value v,
                        const char *syscall, uint32_t *out) {
  int64_t port;
  char detail[64];
  if (!xw_arg_int(env, v, "port", 1, MAX_PORTS, &port)) return NULL;
  if ((uint32_t)port >= ch->cap || ch->ports[port].local < 0) {
    snprintf(detail, sizeof detail, "port %lld is not allocated",
             (long long)port);
    xw_throw_errno_msg(env, EBADF, syscall, detail);
    return NULL;
  }
  *out = (uint32_t)port;
  return &ch->ports[port];
}

static bool grow(evtchn_t *ch, uint32_t need) {
  if (need <= ch->cap) return true;
  uint32_t cap = ch->cap ? ch->cap : 8;
  while (cap < need) cap *= 2;
  if (cap > MAX_PORTS + 1) cap = MAX_PORTS + 1;
  port_t *ports = realloc(ch->ports, cap * sizeof *ports);
  if (!ports) return false;
  ch->ports = ports;
  uint32_t *fired = realloc(ch->fired, cap * sizeof *fired);
  if (!fired) return false;
  ch->fired = fired;
  for (uint32_t i = ch->cap; i < cap; i++)
    ports[i] = (port_t){.local = -1, .remote = -1, .seen = 0};
  ch->cap = cap;
  return true;
}

/* new EventChannel(onEvents) */
static napi_value evtchn_new(napi_env env, napi_callback_info info) {
  napi_value argv[1], self, target;
  size_t argc = 1;
  if (napi_get_cb_info(env, info, &argc, argv, &self, NULL) != napi_ok)
    return NULL;
  if (napi_get_new_target(env, info, &target) != napi_ok || target == NULL)
    return xw_throw_type(env, "Class constructor EventChannel cannot be "
                              "invoked without 'new'");
  if (argc < 1) napi_get_undefined(env, &argv[0]);
  if (!xw_arg_function(env, argv[0], "onEvents")) return NULL;

  evtchn_t *ch = calloc(1, sizeof *ch);
  if (!ch) return xw_throw_errno(env, ENOMEM, "calloc");
  ch->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (ch->epfd < 0) {
    int err = errno;
    free(ch);
    return xw_throw_errno(env, err, "epoll_create1");
  }
  if (!xw_handle_init(&ch->h, &evtchn_ops, env, self, argv, 1, ch->epfd,
                      UV_READABLE))
    return NULL;
  return self;
}

/* allocPort() -> { port, fd } */
static napi_value evtchn_alloc_port(napi_env env, napi_callback_info info) {
  evtchn_t *ch = this_channel(env, info, 0, NULL, "eventfd");
  if (!ch) return NULL;
  uint32_t port = 1; /* lowest free number: ports are reused after close */
  while (port < ch->cap && ch->ports[port].local >= 0) port++;
  if (port > MAX_PORTS)
    return xw_throw_errno_msg(env, ENOSPC, "eventfd", "no free port");
  if (!grow(ch, port + 1)) return xw_throw_errno(env, ENOMEM, "realloc");

  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return xw_throw_errno(env, errno, "eventfd");
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = port};
  if (epoll_ctl(ch->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    int err = errno;
    close(fd);
    return xw_throw_errno(env, err, "epoll_ctl");
  }
  ch->ports[port] = (port_t){.local = fd, .remote = -1, .seen = 0};
  if (++ch->open == 1) ch->single = port;

  napi_value result;
  if (napi_create_object(env, &result) != napi_ok ||
      !xw_set_int(env, result, "port", port) ||
      !xw_set_int(env, result, "fd", fd))
    return NULL;
  return result;
}

static bool owned_by(evtchn_t *ch, int fd) {
  for (uint32_t i = 1; i < ch->cap; i++)
    if (ch->ports[i].local == fd || ch->ports[i].remote == fd) return true;
  return fd == ch->epfd;
}

/* bind(port, remoteFd): take ownership of the peer's eventfd. */
static napi_value evtchn_bind(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  uint32_t port;
  int fd;
  char path[64], link[64];
  evtchn_t *ch = this_channel(env, info, 2, argv, "bind");
  if (!ch) return NULL;
  port_t *p = arg_port(env, ch, argv[0], "bind", &port);
  if (!p || !xw_arg_fd(env, argv[1], "remoteFd", &fd)) return NULL;
  if (fd == p->remote) return NULL;
  /* Taking ownership of a descriptor we already own would close it twice. */
  if (owned_by(ch, fd))
    return xw_throw_errno_msg(env, EINVAL, "bind",
                              "descriptor already belongs to this channel");
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return xw_throw_errno(env, errno, "fcntl");
  /* Writing to anything but an eventfd (a pipe, a socket) could block or
   * mean something else entirely; a buggy peer gets an error, not a hang. */
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, link, sizeof link - 1);
  if (n >= 0) {
    link[n] = '\0';
    if (strcmp(link, "anon_inode:[eventfd]") != 0)
      return xw_throw_errno_msg(env, EINVAL, "bind",
                                "descriptor is not an eventfd");
  }
  if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
    return xw_throw_errno(env, errno, "fcntl");
  if (p->remote >= 0) close(p->remote);
  p->remote = fd;
  return NULL;
}

/* notify(port): signal the peer. The hot path: one write(2). */
static napi_value evtchn_notify(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  uint32_t port;
  evtchn_t *ch = this_channel(env, info, 1, argv, "write");
  if (!ch) return NULL;
  port_t *p = arg_port(env, ch, argv[0], "write", &port);
  if (!p) return NULL;
  if (p->remote < 0) {
    char detail[64];
    snprintf(detail, sizeof detail, "port %u is not bound", port);
    return xw_throw_errno_msg(env, EINVAL, "write", detail);
  }
  uint64_t one = 1;
  /* EAGAIN: the counter is saturated, so the peer has a wake-up pending
   * anyway. */
  if (write(p->remote, &one, sizeof one) < 0 && errno != EAGAIN)
    return xw_throw_errno(env, errno, "write");
  return NULL;
}

/* closePort(port) */
static napi_value evtchn_close_port(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  uint32_t port;
  evtchn_t *ch = this_channel(env, info, 1, argv, "close");
  if (!ch) return NULL;
  if (!arg_port(env, ch, argv[0], "close", &port)) return NULL;
  close_port(ch, port);
  return NULL;
}

static napi_value evtchn_ref(napi_env env, napi_callback_info info) {
  evtchn_t *ch = this_channel(env, info, 0, NULL, NULL);
  if (ch) xw_handle_ref(&ch->h, true);
  return NULL;
}

static napi_value evtchn_unref(napi_env env, napi_callback_info info) {
  evtchn_t *ch = this_channel(env, info, 0, NULL, NULL);
  if (ch) xw_handle_ref(&ch->h, false);
  return NULL;
}

static napi_value evtchn_close(napi_env env, napi_callback_info info) {
  evtchn_t *ch = this_channel(env, info, 0, NULL, NULL);
  if (ch) xw_handle_close(&ch->h);
  return NULL;
}

bool xw_register_evtchn(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"allocPort", NULL, evtchn_alloc_port, NULL, NULL, NULL, napi_default, NULL},
      {"bind", NULL, evtchn_bind, NULL, NULL, NULL, napi_default, NULL},
      {"notify", NULL, evtchn_notify, NULL, NULL, NULL, napi_default, NULL},
      {"closePort", NULL, evtchn_close_port, NULL, NULL, NULL, napi_default, NULL},
      {"ref", NULL, evtchn_ref, NULL, NULL, NULL, napi_default, NULL},
      {"unref", NULL, evtchn_unref, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, evtchn_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls;
  return napi_define_class(env, "EventChannel", NAPI_AUTO_LENGTH, evtchn_new,
                           NULL, sizeof methods / sizeof methods[0], methods,
                           &cls) == napi_ok &&
         napi_set_named_property(env, exports, "EventChannel", cls) == napi_ok;
}
