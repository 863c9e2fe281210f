/* Control sockets: AF_UNIX SOCK_SEQPACKET.
 *
 * Why SEQPACKET: message boundaries come for free (the hello protocol needs
 * no framing), descriptors travel with SCM_RIGHTS, and the socket stays open
 * for the channel's whole life so that a peer's death - even by SIGKILL - is
 * seen at once as EOF/HUP, which shared memory alone could never tell us.
 *
 * Exports: ctlListen(path, onConnection) -> CtlListener, ctlConnect(path)
 * -> fd, and class CtlSocket.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "addon.h"
#include "args.h"
#include "errors.h"
#include "handle.h"

#define MAX_MESSAGE 65536
#define MAX_FDS 8
/* Messages / connections handled per loop turn before yielding to other
 * handles; the descriptor stays readable, so the rest comes next turn. */
#define MAX_PER_TURN 64

typedef char path_buf[sizeof(((struct sockaddr_un *)0)->sun_path)];

/* path was checked by xw_arg_path to fit with its terminator. */
static void make_addr(const char *path, struct sockaddr_un *addr) {
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  memcpy(addr->sun_path, path, strlen(path) + 1);
}

/* ================= listener ================= */

typedef struct {
  xw_handle h;
  int fd;
  /* A descriptor held in reserve: when accept() fails with EMFILE, it is
   * closed so the queued connection can be accepted and closed at once (its
   * client falls back to TCP), instead of staying queued and making the
   * level-triggered poll fire every loop turn. libuv does the same. */
  int reserve;
  dev_t dev; /* identity of the socket file we created, so close() */
  ino_t ino; /* never unlinks a file someone else put there since */
  path_buf path;
} listener_t;

enum { CB_CONNECTION };

static void listener_on_poll(xw_handle *h, int status, int events);
static void listener_release(xw_handle *h);
static void generic_destroy(xw_handle *h) { free(h); }

static const xw_handle_ops listener_ops = {
    .name = "XwayCtlListener",
    .on_poll = listener_on_poll,
    .release = listener_release,
    .destroy = generic_destroy,
};

static void unlink_if_ours(const char *path, dev_t dev, ino_t ino) {
  struct stat st;
  if (path[0] && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
      st.st_dev == dev && st.st_ino == ino)
    unlink(path);
}

static void listener_release(xw_handle *h) {
  listener_t *l = (listener_t *)h;
  if (l->fd >= 0) close(l->fd);
  l->fd = -1;
  if (l->reserve >= 0) close(l->reserve);
  l->reserve = -1;
  unlink_if_ours(l->path, l->dev, l->ino);
  l->path[0] = '\0';
}

static void listener_on_poll(xw_handle *h, int status, int events) {
  (void)events;
  listener_t *l = (listener_t *)h;
  if (status < 0) return; /* a listening socket has no error to report */
  for (int i = 0; i < MAX_PER_TURN && !h->closed; i++) {
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if ((errno == EMFILE || errno == ENFILE) && l->reserve >= 0) {
        close(l->reserve);
        int refused = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        if (refused >= 0) close(refused);
        l->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (refused >= 0) continue;
      }
      /* EAGAIN: drained. Out of descriptors with none in reserve, or another
       * error: try again next turn. */
      return;
    }
    napi_handle_scope scope;
    napi_value arg;
    if (napi_open_handle_scope(h->env, &scope) != napi_ok) {
      close(fd);
      return;
    }
    if (napi_create_int32(h->env, fd, &arg) == napi_ok)
      xw_handle_call(h, CB_CONNECTION, 1, &arg);
    else
      close(fd);
    napi_close_handle_scope(h->env, scope);
  }
}

static listener_t *this_listener(napi_env env, napi_callback_info info) {
  napi_value self;
  if (!xw_args(env, info, 0, NULL, &self)) return NULL;
  xw_handle *h = xw_handle_unwrap(env, self);
  if (h && h->ops != &listener_ops) {
    xw_throw_type(env, "Illegal invocation: not a ctl listener");
    return NULL;
  }
  return (listener_t *)h;
}

static napi_value listener_close(napi_env env, napi_callback_info info) {
  listener_t *l = this_listener(env, info);
  if (l) xw_handle_close(&l->h);
  return NULL;
}

static napi_value listener_ref(napi_env env, napi_callback_info info) {
  listener_t *l = this_listener(env, info);
  if (l) xw_handle_ref(&l->h, true);
  return NULL;
}

static napi_value listener_unref(napi_env env, napi_callback_info info) {
  listener_t *l = this_listener(env, info);
  if (l) xw_handle_ref(&l->h, false);
  return NULL;
}

/* new CtlListener(path, onConnection) - reached through ctlListen(). */
static napi_value listener_new(napi_env env, napi_callback_info info) {
  napi_value argv[2], self, target;
  path_buf path;
  struct sockaddr_un addr;
  struct stat st;
  int err;
  const char *syscall;
  if (!xw_args(env, info, 2, argv, &self)) return NULL;
  if (napi_get_new_target(env, info, &target) != napi_ok || target == NULL)
    return xw_throw_type(env, "use ctlListen()");
  if (!xw_arg_path(env, argv[0], "path", path, sizeof path) ||
      !xw_arg_function(env, argv[1], "onConnection"))
    return NULL;
  make_addr(path, &addr);

  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return xw_throw_errno(env, errno, "socket");
  /* An existing file is the caller's to judge (stale or live): EADDRINUSE. */
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    err = errno;
    close(fd);
    return xw_throw_errno(env, err, "bind");
  }
  if (lstat(path, &st) != 0) {
    syscall = "lstat";
    goto fail;
  }
  if (chmod(path, 0600) != 0) {
    syscall = "chmod";
    goto fail;
  }
  if (listen(fd, SOMAXCONN) != 0) {
    syscall = "listen";
    goto fail;
  }

  listener_t *l = calloc(1, sizeof *l);
  if (!l) {
    errno = ENOMEM;
    syscall = "calloc";
    goto fail;
  }
  l->fd = fd;
  l->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
  l->dev = st.st_dev;
  l->ino = st.st_ino;
  memcpy(l->path, path, sizeof path);
  if (!xw_handle_init(&l->h, &listener_ops, env, self, &argv[1], 1, fd,
                      UV_READABLE))
    return NULL; /* release() closed fd and removed the file */
  return self;

fail:
  err = errno;
  close(fd);
  unlink_if_ours(path, st.st_dev, st.st_ino);
  return xw_throw_errno(env, err, syscall);
}

/* ctlListen(path, onConnection) -> { close(), ref(), unref() } */
static napi_value ctl_listen(napi_env env, napi_callback_info info) {
  napi_value argv[2], ctor, result;
  if (!xw_args(env, info, 2, argv, NULL)) return NULL;
  xw_instance *inst = xw_instance_get(env);
  if (!inst || napi_get_reference_value(env, inst->listener_ctor, &ctor) !=
                   napi_ok)
    return NULL;
  if (napi_new_instance(env, ctor, 2, argv, &result) != napi_ok) return NULL;
  return result;
}

/* ctlConnect(path) -> fd */
static napi_value ctl_connect(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  path_buf path;
  struct sockaddr_un addr;
  if (!xw_args(env, info, 1, argv, NULL)) return NULL;
  if (!xw_arg_path(env, argv[0], "path", path, sizeof path)) return NULL;
  make_addr(path, &addr);
  /* Non-blocking from the start: a unix-socket connect never returns
   * EINPROGRESS, it either completes at once or (backlog full) fails with
   * EAGAIN instead of stalling the event loop. */
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return xw_throw_errno(env, errno, "socket");
  int rc;
  do
    rc = connect(fd, (struct sockaddr *)&addr, sizeof addr);
  while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int err = errno;
    close(fd);
    return xw_throw_errno(env, err, "connect");
  }
  napi_create_int32(env, fd, &result);
  return result;
}

/* ================= CtlSocket ================= */

typedef struct {
  xw_handle h;
  int fd;
  bool owns_fd; /* set once construction succeeded */
} ctlsock_t;

enum { CB_MESSAGE, CB_CLOSE };

static void ctlsock_on_poll(xw_handle *h, int status, int events);
static void ctlsock_release(xw_handle *h);

static const xw_handle_ops ctlsock_ops = {
    .name = "XwayCtlSocket",
    .on_poll = ctlsock_on_poll,
    .release = ctlsock_release,
    .destroy = generic_destroy,
};

static void ctlsock_release(xw_handle *h) {
  ctlsock_t *s = (ctlsock_t *)h;
  if (s->owns_fd && s->fd >= 0) close(s->fd);
  s->fd = -1;
}

/* Report the end once (err 0 = orderly EOF), then stop polling. */
static void ctlsock_finish(ctlsock_t *s, int err) {
  napi_env env = s->h.env;
  napi_handle_scope scope;
  napi_value arg;
  char nbuf[16];
  if (napi_open_handle_scope(env, &scope) != napi_ok) {
    xw_handle_stop(&s->h);
    return;
  }
  if (err)
    napi_create_string_utf8(env, xw_errno_name(err, nbuf, sizeof nbuf),
                            NAPI_AUTO_LENGTH, &arg);
  else
    napi_get_null(env, &arg);
  xw_handle_call(&s->h, CB_CLOSE, 1, &arg);
  xw_handle_stop(&s->h);
  napi_close_handle_scope(env, scope);
}

static void close_fds(const int *fds, int n) {
  for (int i = 0; i < n; i++) close(fds[i]);
}

/* recvmsg returned 0 bytes and no descriptors: on SEQPACKET that is either
 * EOF or a zero-length message from a foreign peer. It is EOF only if the
 * peer has hung up and nothing else is queued. */
static bool is_eof(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
  char c;
  if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLHUP | POLLRDHUP))) return false;
  return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) <= 0;
}

static void ctlsock_on_poll(xw_handle *h, int status, int events) {
  (void)events;
  ctlsock_t *s = (ctlsock_t *)h;
  if (status < 0) {
    /* libuv reports any POLLERR as UV_EBADF; the socket knows the real error
     * (ECONNRESET when the peer closed with our message still unread). */
    int err = -status, soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr)
      err = soerr;
    ctlsock_finish(s, err);
    return;
  }
  xw_instance *inst = xw_instance_get(h->env);
  if (!inst) return;
  if (!inst->recv_buf && !(inst->recv_buf = malloc(MAX_MESSAGE))) return;

  for (int m = 0; m < MAX_PER_TURN && !h->closed; m++) {
    union {
      struct cmsghdr align;
      char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
    } control;
    struct iovec iov = {.iov_base = inst->recv_buf, .iov_len = MAX_MESSAGE};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = control.buf,
                         .msg_controllen = sizeof control.buf};
    int fds[MAX_FDS];
    int nfds = 0;

    ssize_t n = recvmsg(s->fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      ctlsock_finish(s, errno);
      return;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      int k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (int i = 0; i < k; i++) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        if (nfds < MAX_FDS)
          fds[nfds++] = fd;
        else
          close(fd);
      }
    }
    /* A message that did not fit is a protocol violation; half a message
     * (or some of its descriptors) would be worse than none. */
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
      close_fds(fds, nfds);
      ctlsock_finish(s, EMSGSIZE);
      return;
    }
    if (n == 0 && nfds == 0 && is_eof(s->fd)) {
      ctlsock_finish(s, 0);
      return;
    }

    napi_env env = h->env;
    napi_handle_scope scope;
    napi_value argv[2], v;
    void *copy;
    if (napi_open_handle_scope(env, &scope) != napi_ok) {
      close_fds(fds, nfds);
      return;
    }
    if (napi_create_buffer_copy(env, (size_t)n, inst->recv_buf, &copy,
                                &argv[0]) != napi_ok ||
        napi_create_array_with_length(env, nfds, &argv[1]) != napi_ok) {
      close_fds(fds, nfds);
      napi_close_handle_scope(env, scope);
      return;
    }
    for (int i = 0; i < nfds; i++)
      if (napi_create_int32(env, fds[i], &v) == napi_ok)
        napi_set_element(env, argv[1], i, v);
    xw_handle_call(h, CB_MESSAGE, 2, argv);
    napi_close_handle_scope(env, scope);
  }
}

static ctlsock_t *this_socket(napi_env env, napi_callback_info info, size_t n,
                              napi_value *argv, const char *syscall) {
  napi_value self;
  if (!xw_args(env, info, n, argv, &self)) return NULL;
  xw_handle *h = xw_handle_unwrap(env, self);
  if (!h) return NULL;
  if (h->ops != &ctlsock_ops) {
    xw_throw_type(env, "Illegal invocation: not a CtlSocket");
    return NULL;
  }
  if (h->closed && syscall) {
    xw_throw_errno_msg(env, EBADF, syscall, "socket is closed");
    return NULL;
  }
  return (ctlsock_t *)h;
}

/* new CtlSocket(fd, onMessage, onClose): takes ownership of fd on success. */
static napi_value ctlsock_new(napi_env env, napi_callback_info info) {
  napi_value argv[3], self, target;
  int fd, type, flags;
  socklen_t len = sizeof type;
  if (!xw_args(env, info, 3, argv, &self)) return NULL;
  if (napi_get_new_target(env, info, &target) != napi_ok || target == NULL)
    return xw_throw_type(env, "Class constructor CtlSocket cannot be invoked "
                              "without 'new'");
  if (!xw_arg_fd(env, argv[0], "fd", &fd) ||
      !xw_arg_function(env, argv[1], "onMessage") ||
      !xw_arg_function(env, argv[2], "onClose"))
    return NULL;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
    return xw_throw_errno(env, errno, "getsockopt");
  if (type != SOCK_SEQPACKET)
    return xw_throw_errno_msg(env, EPROTOTYPE, "getsockopt",
                              "not a SOCK_SEQPACKET socket");
  /* Close-on-exec matters beyond hygiene: a child inheriting the socket
   * would keep it open and hide our death from the peer. */
  if ((flags = fcntl(fd, F_GETFL)) < 0 ||
      fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
      fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
    return xw_throw_errno(env, errno, "fcntl");

  ctlsock_t *s = calloc(1, sizeof *s);
  if (!s) return xw_throw_errno(env, ENOMEM, "calloc");
  s->fd = fd;
  if (!xw_handle_init(&s->h, &ctlsock_ops, env, self, &argv[1], 2, fd,
                      UV_READABLE | UV_DISCONNECT))
    return NULL; /* fd stays the caller's */
  s->owns_fd = true;
  return self;
}

/* send(data, fds?) */
static napi_value ctlsock_send(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  void *data;
  size_t len;
  uint32_t nfds = 0;
  int fds[MAX_FDS];
  bool is_array;
  napi_valuetype t;
  ctlsock_t *s = this_socket(env, info, 2, argv, "sendmsg");
  if (!s || !xw_arg_bytes(env, argv[0], "data", &data, &len)) return NULL;
  if (len < 1 || len > MAX_MESSAGE)
    return xw_throw_range(env,
                          "The length of \"data\" is out of range. It must be "
                          ">= 1 and <= %d. Received %zu",
                          MAX_MESSAGE, len);
  napi_typeof(env, argv[1], &t);
  if (t != napi_undefined && t != napi_null) {
    if (napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array)
      return xw_throw_type(env, "The \"fds\" argument must be an Array");
    napi_get_array_length(env, argv[1], &nfds);
    if (nfds > MAX_FDS)
      return xw_throw_range(env,
                            "The length of \"fds\" is out of range. It must "
                            "be <= %d. Received %u",
                            MAX_FDS, nfds);
    for (uint32_t i = 0; i < nfds; i++) {
      napi_value v;
      if (napi_get_element(env, argv[1], i, &v) != napi_ok ||
          !xw_arg_fd(env, v, "fds[i]", &fds[i]))
        return NULL;
    }
  }

  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
  } control;
  struct iovec iov = {.iov_base = data, .iov_len = len};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nfds) {
    memset(&control, 0, sizeof control);
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
  }
  /* MSG_NOSIGNAL: a dead peer is an EPIPE error, not a process-killing
   * SIGPIPE. Seqpacket sends are all-or-nothing, so no partial writes. */
  ssize_t n;
  do
    n = sendmsg(s->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0) return xw_throw_errno(env, errno, "sendmsg");
  return NULL;
}

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif
#define MAX_PEER_GROUPS 256

/* peerCredentials() -> { pid, uid, gid, groups } of the peer at connect time, as
 * the kernel records them (mapped into our user namespace). `groups` are its
 * supplementary groups (SO_PEERGROUPS, Linux 4.13): a member of a shared group
 * by supplementary membership (Kubernetes' fsGroup) is one too. */
static napi_value ctlsock_peer_credentials(napi_env env,
                                           napi_callback_info info) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  napi_value result, groups;
  gid_t list[MAX_PEER_GROUPS];
  socklen_t glen = sizeof list;
  ctlsock_t *s = this_socket(env, info, 0, NULL, "getsockopt");
  if (!s) return NULL;
  if (getsockopt(s->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return xw_throw_errno(env, errno, "getsockopt");
  if (getsockopt(s->fd, SOL_SOCKET, SO_PEERGROUPS, list, &glen) != 0)
    glen = 0; /* an older kernel, or more groups than we look at: none */
  if (napi_create_object(env, &result) != napi_ok ||
      !xw_set_int(env, result, "pid", cred.pid) ||
      !xw_set_int(env, result, "uid", cred.uid) ||
      !xw_set_int(env, result, "gid", cred.gid) ||
      napi_create_array(env, &groups) != napi_ok)
    return NULL;
  for (uint32_t i = 0; i < glen / sizeof(gid_t); i++) {
    napi_value g;
    if (napi_create_uint32(env, list[i], &g) != napi_ok ||
        napi_set_element(env, groups, i, g) != napi_ok)
      return NULL;
  }
  if (napi_set_named_property(env, result, "groups", groups) != napi_ok) return NULL;
  return result;
}

static napi_value ctlsock_ref(napi_env env, napi_callback_info info) {
  ctlsock_t *s = this_socket(env, info, 0, NULL, NULL);
  if (s) xw_handle_ref(&s->h, true);
  return NULL;
}

static napi_value ctlsock_unref(napi_env env, napi_callback_info info) {
  ctlsock_t *s = this_socket(env, info, 0, NULL, NULL);
  if (s) xw_handle_ref(&s->h, false);
  return NULL;
}

/* receiveNow(): handles what has already arrived, without waiting for the
 * event loop to poll. Set-up polls with it for an answer that is a few
 * microseconds away, rather than sleeping and paying a process wake-up. */
static napi_value ctlsock_receive_now(napi_env env, napi_callback_info info) {
  ctlsock_t *s = this_socket(env, info, 0, NULL, NULL);
  if (s && !s->h.closed) ctlsock_on_poll(&s->h, 0, 0);
  return NULL;
}

static napi_value ctlsock_close(napi_env env, napi_callback_info info) {
  ctlsock_t *s = this_socket(env, info, 0, NULL, NULL);
  if (s) xw_handle_close(&s->h);
  return NULL;
}

#define METHOD(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_default, NULL}

bool xw_register_ctl(napi_env env, napi_value exports) {
  napi_property_descriptor lmethods[] = {
      METHOD("close", listener_close),
      METHOD("ref", listener_ref),
      METHOD("unref", listener_unref),
  };
  napi_property_descriptor smethods[] = {
      METHOD("send", ctlsock_send),
      METHOD("peerCredentials", ctlsock_peer_credentials),
      METHOD("receiveNow", ctlsock_receive_now),
      METHOD("ref", ctlsock_ref),
      METHOD("unref", ctlsock_unref),
      METHOD("close", ctlsock_close),
  };
  napi_value lcls, scls;
  xw_instance *inst = xw_instance_get(env);
  return inst &&
         napi_define_class(env, "CtlListener", NAPI_AUTO_LENGTH, listener_new,
                           NULL, sizeof lmethods / sizeof lmethods[0], lmethods,
                           &lcls) == napi_ok &&
         napi_create_reference(env, lcls, 1, &inst->listener_ctor) ==
             napi_ok &&
         napi_define_class(env, "CtlSocket", NAPI_AUTO_LENGTH, ctlsock_new,
                           NULL, sizeof smethods / sizeof smethods[0], smethods,
                           &scls) == napi_ok &&
         napi_set_named_property(env, exports, "CtlSocket", scls) == napi_ok &&
         xw_set_method(env, exports, "ctlListen", ctl_listen, NULL) &&
         xw_set_method(env, exports, "ctlConnect", ctl_connect, NULL);
}
