/* The Xen platform's primitives: grant pages, event channels, XenStore.
 *
 * Nothing here links against Xen. Xen's stable libraries (libxenevtchn,
 * libxenstore) are loaded at run time with dlopen, so the addon builds and
 * loads on machines without Xen; xenAvailable() then says exactly what is
 * missing. Grant pages go through the Linux devices /dev/xen/gntalloc and
 * /dev/xen/gntdev directly (their ioctls are stable kernel uapi, declared
 * below so no Xen headers are needed to build): libxengntshr's
 * share_pages and libxengnttab's map_domain_grant_refs mmap at an address of
 * their own choosing, while xway must map at a given page slot of the shared
 * WebAssembly.Memory with MAP_FIXED, exactly as segment.c does for memfds.
 *
 * Grants are shared (gntalloc) or mapped (gntdev), mmapped, given an unmap
 * notification, and the device descriptor is closed at once: the mapping
 * holds the grants, and replacing it (segmentUnmap, or process death) frees
 * them and fires the notification (a cleared byte and an event) at the peer.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "addon.h"
#include "args.h"
#include "errors.h"
#include "handle.h"

#define XEN_PAGE 4096
/* Bounds one share or map request (and the arrays we allocate for it);
 * gntalloc's own default limit is 1024 pages per domain anyway. */
#define MAX_GRANT_PAGES 65536
#define MAX_DOMID 0x7FEF /* DOMID_FIRST_RESERVED - 1 */

/* ---- Linux uapi: include/uapi/xen/gntalloc.h, gntdev.h ---- */
struct gntalloc_alloc_gref {
  uint16_t domid;
  uint16_t flags;
  uint32_t count;
  uint64_t index;
  uint32_t gref_ids[1];
};
#define GNTALLOC_FLAG_WRITABLE 1
#define IOCTL_GNTALLOC_ALLOC_GREF \
  _IOC(_IOC_NONE, 'G', 5, sizeof(struct gntalloc_alloc_gref))
struct xen_unmap_notify { /* same layout for gntalloc and gntdev */
  uint64_t index;
  uint32_t action;
  uint32_t event_channel_port;
};
#define IOCTL_GNTALLOC_SET_UNMAP_NOTIFY \
  _IOC(_IOC_NONE, 'G', 7, sizeof(struct xen_unmap_notify))
#define IOCTL_GNTDEV_SET_UNMAP_NOTIFY \
  _IOC(_IOC_NONE, 'G', 7, sizeof(struct xen_unmap_notify))
#define UNMAP_NOTIFY_CLEAR_BYTE 0x1
#define UNMAP_NOTIFY_SEND_EVENT 0x2
struct gntdev_grant_ref {
  uint32_t domid;
  uint32_t ref;
};
struct gntdev_map_grant_ref {
  uint32_t count;
  uint32_t pad;
  uint64_t index;
  struct gntdev_grant_ref refs[1];
};
#define IOCTL_GNTDEV_MAP_GRANT_REF \
  _IOC(_IOC_NONE, 'G', 0, sizeof(struct gntdev_map_grant_ref))

/* ---- The library functions we use (Xen's stable ABI, sonames .1/.4) ---- */
typedef struct xenevtchn_handle xenevtchn_handle;
struct xs_handle;
struct xs_permissions {
  unsigned int id;
  unsigned int perms;
};
#define XS_PERM_NONE 0
#define XS_PERM_READ 1
#define XS_PERM_WRITE 2
typedef uint32_t xs_transaction_t;
#define XBT_NULL 0
#define XS_WATCH_PATH 0
#define XS_WATCH_TOKEN 1

static struct {
  pthread_once_t once;
  char reason[512]; /* empty when the libraries loaded */
  xenevtchn_handle *(*ev_open)(void *logger, unsigned flags);
  int (*ev_close)(xenevtchn_handle *);
  int (*ev_fd)(xenevtchn_handle *);
  int (*ev_notify)(xenevtchn_handle *, uint32_t);
  int (*ev_bind_unbound)(xenevtchn_handle *, uint32_t);
  int (*ev_bind_interdomain)(xenevtchn_handle *, uint32_t, uint32_t);
  int (*ev_unbind)(xenevtchn_handle *, uint32_t);
  int (*ev_pending)(xenevtchn_handle *);
  int (*ev_unmask)(xenevtchn_handle *, uint32_t);
  struct xs_handle *(*xs_open)(unsigned long);
  void (*xs_close)(struct xs_handle *);
  void *(*xs_read)(struct xs_handle *, xs_transaction_t, const char *,
                   unsigned *);
  bool (*xs_write)(struct xs_handle *, xs_transaction_t, const char *,
                   const void *, unsigned);
  bool (*xs_mkdir)(struct xs_handle *, xs_transaction_t, const char *);
  bool (*xs_rm)(struct xs_handle *, xs_transaction_t, const char *);
  char **(*xs_directory)(struct xs_handle *, xs_transaction_t, const char *,
                         unsigned *);
  struct xs_permissions *(*xs_get_permissions)(struct xs_handle *,
                                               xs_transaction_t, const char *,
                                               unsigned *);
  bool (*xs_set_permissions)(struct xs_handle *, xs_transaction_t,
                             const char *, struct xs_permissions *, unsigned);
  bool (*xs_watch)(struct xs_handle *, const char *, const char *);
  bool (*xs_unwatch)(struct xs_handle *, const char *, const char *);
  int (*xs_fileno)(struct xs_handle *);
  char **(*xs_check_watch)(struct xs_handle *);
  xs_transaction_t (*xs_transaction_start)(struct xs_handle *);
  bool (*xs_transaction_end)(struct xs_handle *, xs_transaction_t, bool);
} xl = {.once = PTHREAD_ONCE_INIT};

static bool sym(void *lib, const char *lib_name, const char *name, void **out) {
  *out = dlsym(lib, name);
  if (*out) return true;
  snprintf(xl.reason, sizeof xl.reason, "%s has no %s", lib_name, name);
  return false;
}

#define SYM(lib, libname, field, name) \
  sym(lib, libname, name, (void **)&xl.field)

static void load_libraries(void) {
  /* Never dlclose'd: function pointers stay valid for the process. */
  const char *ev_name = "libxenevtchn.so.1", *xs_name = "libxenstore.so.4";
  void *ev = dlopen(ev_name, RTLD_NOW | RTLD_LOCAL);
  if (!ev) {
    snprintf(xl.reason, sizeof xl.reason, "%s", dlerror());
    return;
  }
  void *xs = dlopen(xs_name, RTLD_NOW | RTLD_LOCAL);
  if (!xs) {
    snprintf(xl.reason, sizeof xl.reason, "%s", dlerror());
    return;
  }
  if (!SYM(ev, ev_name, ev_open, "xenevtchn_open") ||
      !SYM(ev, ev_name, ev_close, "xenevtchn_close") ||
      !SYM(ev, ev_name, ev_fd, "xenevtchn_fd") ||
      !SYM(ev, ev_name, ev_notify, "xenevtchn_notify") ||
      !SYM(ev, ev_name, ev_bind_unbound, "xenevtchn_bind_unbound_port") ||
      !SYM(ev, ev_name, ev_bind_interdomain, "xenevtchn_bind_interdomain") ||
      !SYM(ev, ev_name, ev_unbind, "xenevtchn_unbind") ||
      !SYM(ev, ev_name, ev_pending, "xenevtchn_pending") ||
      !SYM(ev, ev_name, ev_unmask, "xenevtchn_unmask") ||
      !SYM(xs, xs_name, xs_open, "xs_open") ||
      !SYM(xs, xs_name, xs_close, "xs_close") ||
      !SYM(xs, xs_name, xs_read, "xs_read") ||
      !SYM(xs, xs_name, xs_write, "xs_write") ||
      !SYM(xs, xs_name, xs_mkdir, "xs_mkdir") ||
      !SYM(xs, xs_name, xs_rm, "xs_rm") ||
      !SYM(xs, xs_name, xs_directory, "xs_directory") ||
      !SYM(xs, xs_name, xs_get_permissions, "xs_get_permissions") ||
      !SYM(xs, xs_name, xs_set_permissions, "xs_set_permissions") ||
      !SYM(xs, xs_name, xs_watch, "xs_watch") ||
      !SYM(xs, xs_name, xs_unwatch, "xs_unwatch") ||
      !SYM(xs, xs_name, xs_fileno, "xs_fileno") ||
      !SYM(xs, xs_name, xs_check_watch, "xs_check_watch") ||
      !SYM(xs, xs_name, xs_transaction_start, "xs_transaction_start") ||
      !SYM(xs, xs_name, xs_transaction_end, "xs_transaction_end"))
    return;
}

/* NULL when usable, else why not. The libraries are checked once per
 * process; the devices and xenstored on every call (they can appear later,
 * e.g. after modprobe). */
static const char *unavailable(char *buf, size_t len) {
  pthread_once(&xl.once, load_libraries);
  if (xl.reason[0]) return xl.reason;
  static const char *devices[] = {"/dev/xen/evtchn", "/dev/xen/gntalloc",
                                  "/dev/xen/gntdev"};
  for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++)
    if (access(devices[i], R_OK | W_OK) != 0) {
      snprintf(buf, len, "%s: %s", devices[i], strerror(errno));
      return buf;
    }
  return NULL;
}

static bool require_xen(napi_env env, const char *syscall) {
  char buf[256];
  const char *why = unavailable(buf, sizeof buf);
  if (!why) return true;
  char detail[600];
  snprintf(detail, sizeof detail, "Xen not available (%s)", why);
  xw_throw_errno_msg(env, ENOSYS, syscall, detail);
  return false;
}

/* xenAvailable() -> null | "Xen not available (...)" */
static napi_value xen_available(napi_env env, napi_callback_info info) {
  (void)info;
  char buf[256], msg[600];
  napi_value result;
  const char *why = unavailable(buf, sizeof buf);
  if (!why) {
    /* The devices exist; XenStore must answer too. */
    struct xs_handle *h = xl.xs_open(0);
    if (h) {
      xl.xs_close(h);
      napi_get_null(env, &result);
      return result;
    }
    snprintf(buf, sizeof buf, "cannot reach XenStore: %s", strerror(errno));
    why = buf;
  }
  snprintf(msg, sizeof msg, "Xen not available (%s)", why);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &result);
  return result;
}

/* ---- Grants ---- */

/* (view, offset, size) with Xen-page granularity; returns the address. */
static uint8_t *grant_range(napi_env env, napi_value *argv, size_t *pages) {
  uint8_t *base;
  size_t len;
  int64_t offset, size;
  if (!xw_arg_shared_view(env, argv[0], "view", &base, &len) ||
      !xw_arg_int(env, argv[1], "offset", 0, INT64_MAX / 2, &offset) ||
      !xw_arg_int(env, argv[2], "size", XEN_PAGE,
                  (int64_t)MAX_GRANT_PAGES * XEN_PAGE, &size))
    return NULL;
  if (offset % XEN_PAGE || size % XEN_PAGE) {
    xw_throw_range(env, "offset %lld and size %lld must be multiples of %d",
                   (long long)offset, (long long)size, XEN_PAGE);
    return NULL;
  }
  if ((uint64_t)offset + (uint64_t)size > len) {
    xw_throw_range(env, "The range offset %lld + size %lld is out of range. "
                   "It must lie within the view (%zu bytes)",
                   (long long)offset, (long long)size, len);
    return NULL;
  }
  *pages = (size_t)(size / XEN_PAGE);
  return base + offset;
}

/* notifyOffset (-1: none, else a byte offset in the range to clear on
 * unmap) and notifyPort (-1: none, else a local event port to signal). */
static bool notify_args(napi_env env, napi_value off_v, napi_value port_v,
                        size_t pages, int64_t *off, int64_t *port) {
  if (!xw_arg_int(env, off_v, "notifyOffset", -1,
                  (int64_t)pages * XEN_PAGE - 1, off) ||
      !xw_arg_int(env, port_v, "notifyPort", -1, UINT32_MAX, port))
    return false;
  return true;
}

static int set_notify(int fd, unsigned long req, uint64_t index,
                      int64_t off, int64_t port) {
  struct xen_unmap_notify n = {0};
  if (off >= 0) {
    n.index = index + (uint64_t)off;
    n.action |= UNMAP_NOTIFY_CLEAR_BYTE;
  } else {
    n.index = index;
  }
  if (port >= 0) {
    n.action |= UNMAP_NOTIFY_SEND_EVENT;
    n.event_channel_port = (uint32_t)port;
  }
  if (!n.action) return 0;
  return ioctl(fd, req, &n);
}

/* Puts fresh private zero pages back over [addr, addr+len): what the wasm
 * memory held before. Used on failure paths. */
static void restore_pages(void *addr, size_t len) {
  mmap(addr, len, PROT_READ | PROT_WRITE,
       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}

/* xenGrantShare(view, offset, size, domid, notifyOffset, notifyPort)
 *   -> number[] (one grant reference per 4 KiB page) */
static napi_value grant_share(napi_env env, napi_callback_info info) {
  napi_value argv[6], result;
  size_t pages;
  int64_t domid, off, port;
  if (!xw_args(env, info, 6, argv, NULL)) return NULL;
  uint8_t *addr = grant_range(env, argv, &pages);
  if (!addr || !xw_arg_int(env, argv[3], "domid", 0, MAX_DOMID, &domid) ||
      !notify_args(env, argv[4], argv[5], pages, &off, &port))
    return NULL;
  if (!require_xen(env, "open")) return NULL;

  size_t bytes = sizeof(struct gntalloc_alloc_gref) + pages * sizeof(uint32_t);
  struct gntalloc_alloc_gref *req = calloc(1, bytes);
  if (!req) return xw_throw_errno(env, ENOMEM, "calloc");
  int fd = open("/dev/xen/gntalloc", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    free(req);
    return xw_throw_errno(env, err, "open");
  }
  req->domid = (uint16_t)domid;
  req->flags = GNTALLOC_FLAG_WRITABLE;
  req->count = (uint32_t)pages;
  const char *failed = NULL;
  int err = 0;
  if (ioctl(fd, IOCTL_GNTALLOC_ALLOC_GREF, req) != 0) {
    failed = "ioctl(IOCTL_GNTALLOC_ALLOC_GREF)";
  } else if (mmap(addr, pages * XEN_PAGE, PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_FIXED, fd, (off_t)req->index) ==
             MAP_FAILED) {
    failed = "mmap";
  } else {
    if (set_notify(fd, IOCTL_GNTALLOC_SET_UNMAP_NOTIFY, req->index, off,
                   port) != 0)
      failed = "ioctl(IOCTL_GNTALLOC_SET_UNMAP_NOTIFY)";
  }
  if (failed) {
    err = errno;
    /* The mapping (if any) goes first, then closing the device frees the
     * grant references we allocated. */
    restore_pages(addr, pages * XEN_PAGE);
    close(fd);
    free(req);
    return xw_throw_errno(env, err, failed);
  }
  /* The mapping keeps the grants; the descriptor is no longer needed. */
  close(fd);
  if (napi_create_array_with_length(env, pages, &result) != napi_ok) {
    free(req);
    restore_pages(addr, pages * XEN_PAGE);
    return NULL;
  }
  for (size_t i = 0; i < pages; i++) {
    napi_value v;
    if (napi_create_uint32(env, req->gref_ids[i], &v) != napi_ok ||
        napi_set_element(env, result, (uint32_t)i, v) != napi_ok) {
      free(req);
      restore_pages(addr, pages * XEN_PAGE);
      return NULL;
    }
  }
  free(req);
  return result;
}

/* xenGrantMap(view, offset, size, domid, grefs, notifyOffset, notifyPort) */
static napi_value grant_map(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  size_t pages;
  int64_t domid, off, port;
  bool is_array = false;
  uint32_t n = 0;
  if (!xw_args(env, info, 7, argv, NULL)) return NULL;
  uint8_t *addr = grant_range(env, argv, &pages);
  if (!addr || !xw_arg_int(env, argv[3], "domid", 0, MAX_DOMID, &domid) ||
      !notify_args(env, argv[5], argv[6], pages, &off, &port))
    return NULL;
  if (napi_is_array(env, argv[4], &is_array) != napi_ok || !is_array)
    return xw_throw_type(env, "The \"grefs\" argument must be an array");
  napi_get_array_length(env, argv[4], &n);
  if (n != pages)
    return xw_throw_range(env, "%u grant references for %zu pages", n, pages);
  size_t bytes = sizeof(struct gntdev_map_grant_ref) +
                 pages * sizeof(struct gntdev_grant_ref);
  struct gntdev_map_grant_ref *req = calloc(1, bytes);
  if (!req) return xw_throw_errno(env, ENOMEM, "calloc");
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    int64_t ref;
    if (napi_get_element(env, argv[4], i, &v) != napi_ok ||
        !xw_arg_int(env, v, "grefs[i]", 0, UINT32_MAX, &ref)) {
      free(req);
      return NULL;
    }
    req->refs[i].domid = (uint32_t)domid;
    req->refs[i].ref = (uint32_t)ref;
  }
  req->count = (uint32_t)pages;
  if (!require_xen(env, "open")) {
    free(req);
    return NULL;
  }
  int fd = open("/dev/xen/gntdev", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    free(req);
    return xw_throw_errno(env, err, "open");
  }
  const char *failed = NULL;
  if (ioctl(fd, IOCTL_GNTDEV_MAP_GRANT_REF, req) != 0)
    failed = "ioctl(IOCTL_GNTDEV_MAP_GRANT_REF)";
  else if (mmap(addr, pages * XEN_PAGE, PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_FIXED, fd, (off_t)req->index) == MAP_FAILED)
    failed = "mmap";
  else if (set_notify(fd, IOCTL_GNTDEV_SET_UNMAP_NOTIFY, req->index, off,
                      port) != 0)
    failed = "ioctl(IOCTL_GNTDEV_SET_UNMAP_NOTIFY)";
  int err = errno;
  if (failed) restore_pages(addr, pages * XEN_PAGE);
  /* Closing gntdev drops its own reference to the map: the mapping keeps
   * it (and, on failure, nothing does, so the grants are unmapped). */
  close(fd);
  free(req);
  if (failed) {
    /* A bad or foreign reference makes the mapping fail with EFAULT/EINVAL
     * when the hypervisor refuses it. */
    return xw_throw_errno(env, err, failed);
  }
  return NULL;
}

/* ---- Event channels ---- */

#define EV_MAX_ROUNDS 256

typedef struct {
  xw_handle h;
  xenevtchn_handle *xce;
  uint32_t *fired;
  uint32_t nfired_cap;
} xevt_t;

static void xevt_on_poll(xw_handle *h, int status, int events);
static void xevt_release(xw_handle *h);
static void xevt_destroy(xw_handle *h);

static const xw_handle_ops xevt_ops = {
    .name = "XwayXenEventChannel",
    .on_poll = xevt_on_poll,
    .release = xevt_release,
    .destroy = xevt_destroy,
};

static void xevt_on_poll(xw_handle *h, int status, int events) {
  (void)events;
  xevt_t *x = (xevt_t *)h;
  uint32_t nfired = 0;
  if (status < 0 || !x->xce) return;
  /* The descriptor is non-blocking: pending() fails with EAGAIN when the
   * queue is empty. Each port is unmasked at once (Xen masks it when it
   * fires) and reported once per turn. */
  for (int i = 0; i < EV_MAX_ROUNDS; i++) {
    int port = xl.ev_pending(x->xce);
    if (port < 0) break;
    /* Failure leaves the port masked: only a port unbound meanwhile can
     * fail, and it has nobody left to wake. */
    xl.ev_unmask(x->xce, (uint32_t)port);
    bool seen = false;
    for (uint32_t j = 0; j < nfired; j++)
      if (x->fired[j] == (uint32_t)port) seen = true;
    if (seen) continue;
    if (nfired == x->nfired_cap) {
      uint32_t cap = x->nfired_cap ? x->nfired_cap * 2 : 16;
      uint32_t *f = realloc(x->fired, cap * sizeof *f);
      if (!f) break;
      x->fired = f;
      x->nfired_cap = cap;
    }
    x->fired[nfired++] = (uint32_t)port;
  }
  if (nfired == 0) return;
  napi_env env = h->env;
  napi_handle_scope scope;
  napi_value arr, v;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (napi_create_array_with_length(env, nfired, &arr) == napi_ok) {
    for (uint32_t i = 0; i < nfired; i++)
      if (napi_create_uint32(env, x->fired[i], &v) == napi_ok)
        napi_set_element(env, arr, i, v);
    xw_handle_call(h, 0, 1, &arr);
  }
  napi_close_handle_scope(env, scope);
}

static void xevt_release(xw_handle *h) {
  xevt_t *x = (xevt_t *)h;
  /* Closing the handle unbinds every port bound through it. */
  if (x->xce) xl.ev_close(x->xce);
  x->xce = NULL;
}

static void xevt_destroy(xw_handle *h) {
  xevt_t *x = (xevt_t *)h;
  free(x->fired);
  free(x);
}

static xevt_t *this_xevt(napi_env env, napi_callback_info info, size_t n,
                         napi_value *argv, const char *syscall) {
  napi_value self;
  if (!xw_args(env, info, n, argv, &self)) return NULL;
  xw_handle *h = xw_handle_unwrap(env, self);
  if (!h) return NULL;
  if (h->ops != &xevt_ops) {
    xw_throw_type(env, "Illegal invocation: not a XenEventChannel");
    return NULL;
  }
  if (syscall && (h->closed || !((xevt_t *)h)->xce)) {
    xw_throw_errno_msg(env, EBADF, syscall, "event channel is closed");
    return NULL;
  }
  return (xevt_t *)h;
}

/* new XenEventChannel(onEvents) */
static napi_value xevt_new(napi_env env, napi_callback_info info) {
  napi_value argv[1], self, target;
  size_t argc = 1;
  if (napi_get_cb_info(env, info, &argc, argv, &self, NULL) != napi_ok)
    return NULL;
  if (napi_get_new_target(env, info, &target) != napi_ok || target == NULL)
    return xw_throw_type(env, "Class constructor XenEventChannel cannot be "
                              "invoked without 'new'");
  if (argc < 1) napi_get_undefined(env, &argv[0]);
  if (!xw_arg_function(env, argv[0], "onEvents")) return NULL;
  if (!require_xen(env, "xenevtchn_open")) return NULL;
  xevt_t *x = calloc(1, sizeof *x);
  if (!x) return xw_throw_errno(env, ENOMEM, "calloc");
  x->xce = xl.ev_open(NULL, 0);
  if (!x->xce) {
    int err = errno;
    free(x);
    return xw_throw_errno(env, err, "xenevtchn_open");
  }
  int fd = xl.ev_fd(x->xce);
  int flags = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    int err = fd >= 0 ? errno : EBADF;
    xl.ev_close(x->xce);
    free(x);
    return xw_throw_errno(env, err, "fcntl");
  }
  if (!xw_handle_init(&x->h, &xevt_ops, env, self, argv, 1, fd, UV_READABLE))
    return NULL;
  return self;
}

static napi_value port_result(napi_env env, int port, const char *syscall) {
  napi_value v;
  if (port < 0) return xw_throw_errno(env, errno, syscall);
  napi_create_uint32(env, (uint32_t)port, &v);
  return v;
}

/* bindUnbound(remoteDomid) -> local port for remoteDomid to bind to */
static napi_value xevt_bind_unbound(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int64_t domid;
  xevt_t *x = this_xevt(env, info, 1, argv, "xenevtchn_bind_unbound_port");
  if (!x || !xw_arg_int(env, argv[0], "domid", 0, MAX_DOMID, &domid))
    return NULL;
  return port_result(env, xl.ev_bind_unbound(x->xce, (uint32_t)domid),
                     "xenevtchn_bind_unbound_port");
}

/* bindInterdomain(remoteDomid, remotePort) -> local port */
static napi_value xevt_bind_interdomain(napi_env env,
                                        napi_callback_info info) {
  napi_value argv[2];
  int64_t domid, rport;
  xevt_t *x = this_xevt(env, info, 2, argv, "xenevtchn_bind_interdomain");
  if (!x || !xw_arg_int(env, argv[0], "domid", 0, MAX_DOMID, &domid) ||
      !xw_arg_int(env, argv[1], "remotePort", 1, INT32_MAX, &rport))
    return NULL;
  return port_result(
      env, xl.ev_bind_interdomain(x->xce, (uint32_t)domid, (uint32_t)rport),
      "xenevtchn_bind_interdomain");
}

static napi_value xevt_port_op(napi_env env, napi_callback_info info,
                               const char *syscall,
                               int (*op)(xenevtchn_handle *, uint32_t)) {
  napi_value argv[1];
  int64_t port;
  xevt_t *x = this_xevt(env, info, 1, argv, syscall);
  if (!x || !xw_arg_int(env, argv[0], "port", 1, INT32_MAX, &port))
    return NULL;
  if (op(x->xce, (uint32_t)port) != 0) return xw_throw_errno(env, errno, syscall);
  return NULL;
}

static napi_value xevt_notify(napi_env env, napi_callback_info info) {
  return xevt_port_op(env, info, "xenevtchn_notify", xl.ev_notify);
}

static napi_value xevt_unbind(napi_env env, napi_callback_info info) {
  return xevt_port_op(env, info, "xenevtchn_unbind", xl.ev_unbind);
}

static napi_value xevt_ref(napi_env env, napi_callback_info info) {
  xevt_t *x = this_xevt(env, info, 0, NULL, NULL);
  if (x) xw_handle_ref(&x->h, true);
  return NULL;
}

static napi_value xevt_unref(napi_env env, napi_callback_info info) {
  xevt_t *x = this_xevt(env, info, 0, NULL, NULL);
  if (x) xw_handle_ref(&x->h, false);
  return NULL;
}

static napi_value xevt_close(napi_env env, napi_callback_info info) {
  xevt_t *x = this_xevt(env, info, 0, NULL, NULL);
  if (x) xw_handle_close(&x->h);
  return NULL;
}

/* ---- XenStore ---- */

#define XS_PATH_MAX 3072
#define XS_VALUE_MAX 4096
#define XS_MAX_PERMS 64
#define XS_TX_RETRIES 16

typedef struct {
  xw_handle h;
  struct xs_handle *xs;
} xstore_t;

static void xstore_on_poll(xw_handle *h, int status, int events);
static void xstore_release(xw_handle *h);
static void xstore_destroy(xw_handle *h);

static const xw_handle_ops xstore_ops = {
    .name = "XwayXenStore",
    .on_poll = xstore_on_poll,
    .release = xstore_release,
    .destroy = xstore_destroy,
};

static void xstore_on_poll(xw_handle *h, int status, int events) {
  (void)events;
  xstore_t *x = (xstore_t *)h;
  if (status < 0) return;
  for (int i = 0; i < 64 && x->xs && !h->closed; i++) {
    char **vec = xl.xs_check_watch(x->xs);
    if (!vec) break; /* EAGAIN: nothing queued */
    napi_env env = h->env;
    napi_handle_scope scope;
    napi_value argv[2];
    if (napi_open_handle_scope(env, &scope) == napi_ok) {
      if (napi_create_string_utf8(env, vec[XS_WATCH_PATH], NAPI_AUTO_LENGTH,
                                  &argv[0]) == napi_ok &&
          napi_create_string_utf8(env, vec[XS_WATCH_TOKEN], NAPI_AUTO_LENGTH,
                                  &argv[1]) == napi_ok)
        xw_handle_call(h, 0, 2, argv);
      napi_close_handle_scope(env, scope);
    }
    free(vec);
  }
}

static void xstore_release(xw_handle *h) {
  xstore_t *x = (xstore_t *)h;
  /* Joins libxenstore's reader thread and closes its descriptors. */
  if (x->xs) xl.xs_close(x->xs);
  x->xs = NULL;
}

static void xstore_destroy(xw_handle *h) { free(h); }

static xstore_t *this_xs(napi_env env, napi_callback_info info, size_t n,
                         napi_value *argv, const char *syscall) {
  napi_value self;
  if (!xw_args(env, info, n, argv, &self)) return NULL;
  xw_handle *h = xw_handle_unwrap(env, self);
  if (!h) return NULL;
  if (h->ops != &xstore_ops) {
    xw_throw_type(env, "Illegal invocation: not a XenStore");
    return NULL;
  }
  if (syscall && (h->closed || !((xstore_t *)h)->xs)) {
    xw_throw_errno_msg(env, EBADF, syscall, "XenStore connection is closed");
    return NULL;
  }
  return (xstore_t *)h;
}

/* new XenStore(onWatch(path, token)) */
static napi_value xstore_new(napi_env env, napi_callback_info info) {
  napi_value argv[1], self, target;
  size_t argc = 1;
  if (napi_get_cb_info(env, info, &argc, argv, &self, NULL) != napi_ok)
    return NULL;
  if (napi_get_new_target(env, info, &target) != napi_ok || target == NULL)
    return xw_throw_type(env, "Class constructor XenStore cannot be invoked "
                              "without 'new'");
  if (argc < 1) napi_get_undefined(env, &argv[0]);
  if (!xw_arg_function(env, argv[0], "onWatch")) return NULL;
  if (!require_xen(env, "xs_open")) return NULL;
  xstore_t *x = calloc(1, sizeof *x);
  if (!x) return xw_throw_errno(env, ENOMEM, "calloc");
  x->xs = xl.xs_open(0);
  if (!x->xs) {
    int err = errno;
    free(x);
    return xw_throw_errno(env, err, "xs_open");
  }
  /* The watch pipe: readable whenever a watch event is queued. */
  int fd = xl.xs_fileno(x->xs);
  if (fd < 0) {
    int err = errno;
    xl.xs_close(x->xs);
    free(x);
    return xw_throw_errno(env, err, "xs_fileno");
  }
  if (!xw_handle_init(&x->h, &xstore_ops, env, self, argv, 1, fd,
                      UV_READABLE))
    return NULL;
  return self;
}

static bool arg_xs_path(napi_env env, napi_value v, char *buf) {
  return xw_arg_path(env, v, "path", buf, XS_PATH_MAX + 1);
}

/* read(path) -> string | null (absent) */
static napi_value xstore_read(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  char path[XS_PATH_MAX + 1];
  unsigned len = 0;
  xstore_t *x = this_xs(env, info, 1, argv, "xs_read");
  if (!x || !arg_xs_path(env, argv[0], path)) return NULL;
  char *v = xl.xs_read(x->xs, XBT_NULL, path, &len);
  if (!v) {
    if (errno == ENOENT) {
      napi_get_null(env, &result);
      return result;
    }
    return xw_throw_errno(env, errno, "xs_read");
  }
  napi_status st = napi_create_string_utf8(env, v, len, &result);
  free(v);
  return st == napi_ok ? result : NULL;
}

/* Permissions as xenstore-chmod writes them: "n0", "r5", "w3", "b7" (first
 * entry: owner and everybody else's access; further: per domain). */
static bool parse_perms(napi_env env, napi_value arr, struct xs_permissions *p,
                        unsigned *n) {
  bool is_array = false;
  uint32_t len = 0;
  if (napi_is_array(env, arr, &is_array) != napi_ok || !is_array) {
    xw_throw_type(env, "The \"perms\" argument must be an array of strings");
    return false;
  }
  napi_get_array_length(env, arr, &len);
  if (len < 1 || len > XS_MAX_PERMS) {
    xw_throw_range(env, "perms must have 1 to %d entries, got %u",
                   XS_MAX_PERMS, len);
    return false;
  }
  for (uint32_t i = 0; i < len; i++) {
    napi_value v;
    char s[16];
    if (napi_get_element(env, arr, i, &v) != napi_ok ||
        !xw_arg_path(env, v, "perms[i]", s, sizeof s))
      return false;
    char *end = NULL;
    errno = 0;
    unsigned long id = strtoul(s + 1, &end, 10);
    unsigned bits;
    switch (s[0]) {
    case 'n': bits = XS_PERM_NONE; break;
    case 'r': bits = XS_PERM_READ; break;
    case 'w': bits = XS_PERM_WRITE; break;
    case 'b': bits = XS_PERM_READ | XS_PERM_WRITE; break;
    default: bits = 99;
    }
    if (bits == 99 || s[1] < '0' || s[1] > '9' || *end || errno ||
        id > MAX_DOMID) {
      xw_throw_value(env, "perms[%u] \"%s\" is not n|r|w|b followed by a "
                     "domain id", i, s);
      return false;
    }
    p[i].id = (unsigned)id;
    p[i].perms = bits;
  }
  *n = len;
  return true;
}

static bool get_value(napi_env env, napi_value v, char **data, size_t *len,
                      bool *is_null) {
  napi_valuetype t;
  *is_null = false;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (t == napi_null) {
    *is_null = true;
    return true;
  }
  if (t != napi_string) {
    xw_throw_type(env, "The \"value\" argument must be a string or null");
    return false;
  }
  if (napi_get_value_string_utf8(env, v, NULL, 0, len) != napi_ok)
    return false;
  if (*len > XS_VALUE_MAX) {
    xw_throw_range(env, "XenStore values hold at most %d bytes, got %zu",
                   XS_VALUE_MAX, *len);
    return false;
  }
  *data = malloc(*len + 1);
  if (!*data) {
    xw_throw_errno(env, ENOMEM, "malloc");
    return false;
  }
  napi_get_value_string_utf8(env, v, *data, *len + 1, len);
  return true;
}

/* write(path, value) */
static napi_value xstore_write(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char path[XS_PATH_MAX + 1], *data = NULL;
  size_t len = 0;
  bool is_null;
  xstore_t *x = this_xs(env, info, 2, argv, "xs_write");
  if (!x || !arg_xs_path(env, argv[0], path) ||
      !get_value(env, argv[1], &data, &len, &is_null))
    return NULL;
  bool ok = is_null ? xl.xs_mkdir(x->xs, XBT_NULL, path)
                    : xl.xs_write(x->xs, XBT_NULL, path, data, (unsigned)len);
  int err = errno;
  free(data);
  if (!ok) return xw_throw_errno(env, err, is_null ? "xs_mkdir" : "xs_write");
  return NULL;
}

/* rm(path): removes the node and its children; an absent node is fine. */
static napi_value xstore_rm(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char path[XS_PATH_MAX + 1];
  xstore_t *x = this_xs(env, info, 1, argv, "xs_rm");
  if (!x || !arg_xs_path(env, argv[0], path)) return NULL;
  if (!xl.xs_rm(x->xs, XBT_NULL, path) && errno != ENOENT)
    return xw_throw_errno(env, errno, "xs_rm");
  return NULL;
}

/* directory(path) -> string[] | null (absent) */
static napi_value xstore_directory(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  char path[XS_PATH_MAX + 1];
  unsigned n = 0;
  xstore_t *x = this_xs(env, info, 1, argv, "xs_directory");
  if (!x || !arg_xs_path(env, argv[0], path)) return NULL;
  char **names = xl.xs_directory(x->xs, XBT_NULL, path, &n);
  if (!names) {
    if (errno == ENOENT) {
      napi_get_null(env, &result);
      return result;
    }
    return xw_throw_errno(env, errno, "xs_directory");
  }
  if (napi_create_array_with_length(env, n, &result) != napi_ok) {
    free(names);
    return NULL;
  }
  for (unsigned i = 0; i < n; i++) {
    napi_value v;
    if (napi_create_string_utf8(env, names[i], NAPI_AUTO_LENGTH, &v) ==
        napi_ok)
      napi_set_element(env, result, i, v);
  }
  free(names); /* one allocation holds the array and the strings */
  return result;
}

/* getPermissions(path) -> string[] | null; entry 0's domain is the owner,
 * i.e. the domain that created the node: XenStore's word, not the node's. */
static napi_value xstore_get_perms(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  char path[XS_PATH_MAX + 1];
  unsigned n = 0;
  xstore_t *x = this_xs(env, info, 1, argv, "xs_get_permissions");
  if (!x || !arg_xs_path(env, argv[0], path)) return NULL;
  struct xs_permissions *p = xl.xs_get_permissions(x->xs, XBT_NULL, path, &n);
  if (!p) {
    if (errno == ENOENT) {
      napi_get_null(env, &result);
      return result;
    }
    return xw_throw_errno(env, errno, "xs_get_permissions");
  }
  if (napi_create_array_with_length(env, n, &result) != napi_ok) {
    free(p);
    return NULL;
  }
  for (unsigned i = 0; i < n; i++) {
    static const char letters[] = "nrwb";
    char s[16];
    snprintf(s, sizeof s, "%c%u", letters[p[i].perms & 3], p[i].id);
    napi_value v;
    if (napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v) == napi_ok)
      napi_set_element(env, result, i, v);
  }
  free(p);
  return result;
}

/* setPermissions(path, perms) */
static napi_value xstore_set_perms(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char path[XS_PATH_MAX + 1];
  struct xs_permissions p[XS_MAX_PERMS];
  unsigned n;
  xstore_t *x = this_xs(env, info, 2, argv, "xs_set_permissions");
  if (!x || !arg_xs_path(env, argv[0], path) ||
      !parse_perms(env, argv[1], p, &n))
    return NULL;
  if (!xl.xs_set_permissions(x->xs, XBT_NULL, path, p, n))
    return xw_throw_errno(env, errno, "xs_set_permissions");
  return NULL;
}

/* writeAll([[path, value|null, perms|null], ...]): one transaction (retried
 * while XenStore reports a conflict), so a reader sees all or nothing, and
 * every node already carries its permissions when it becomes visible. */
typedef struct {
  char *path;
  char *value; /* NULL: mkdir */
  size_t len;
  struct xs_permissions perms[XS_MAX_PERMS];
  unsigned nperms;
} xs_entry;

static void free_entries(xs_entry *e, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    free(e[i].path);
    free(e[i].value);
  }
  free(e);
}

static napi_value xstore_write_all(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  bool is_array = false;
  uint32_t n = 0;
  xstore_t *x = this_xs(env, info, 1, argv, "xs_transaction_start");
  if (!x) return NULL;
  if (napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array)
    return xw_throw_type(env, "The \"entries\" argument must be an array");
  napi_get_array_length(env, argv[0], &n);
  if (n < 1 || n > 1024)
    return xw_throw_range(env, "1 to 1024 entries per transaction, got %u", n);
  xs_entry *e = calloc(n, sizeof *e);
  if (!e) return xw_throw_errno(env, ENOMEM, "calloc");
  for (uint32_t i = 0; i < n; i++) {
    napi_value item, pv, vv, permv;
    napi_valuetype t;
    bool arr = false, is_null;
    if (napi_get_element(env, argv[0], i, &item) != napi_ok ||
        napi_is_array(env, item, &arr) != napi_ok || !arr) {
      free_entries(e, n);
      return xw_throw_type(env, "entries[%u] must be [path, value, perms]", i);
    }
    e[i].path = malloc(XS_PATH_MAX + 1);
    if (!e[i].path) {
      free_entries(e, n);
      return xw_throw_errno(env, ENOMEM, "malloc");
    }
    if (napi_get_element(env, item, 0, &pv) != napi_ok ||
        napi_get_element(env, item, 1, &vv) != napi_ok ||
        napi_get_element(env, item, 2, &permv) != napi_ok ||
        !arg_xs_path(env, pv, e[i].path) ||
        !get_value(env, vv, &e[i].value, &e[i].len, &is_null) ||
        napi_typeof(env, permv, &t) != napi_ok ||
        (t != napi_null && t != napi_undefined &&
         !parse_perms(env, permv, e[i].perms, &e[i].nperms))) {
      free_entries(e, n);
      return NULL;
    }
  }
  const char *failed = NULL;
  int err = 0;
  for (int attempt = 0; attempt < XS_TX_RETRIES; attempt++) {
    xs_transaction_t t = xl.xs_transaction_start(x->xs);
    if (!t) {
      failed = "xs_transaction_start";
      err = errno;
      break;
    }
    failed = NULL;
    for (uint32_t i = 0; i < n && !failed; i++) {
      bool ok = e[i].value ? xl.xs_write(x->xs, t, e[i].path, e[i].value,
                                         (unsigned)e[i].len)
                           : xl.xs_mkdir(x->xs, t, e[i].path);
      if (!ok) failed = e[i].value ? "xs_write" : "xs_mkdir";
      else if (e[i].nperms && !xl.xs_set_permissions(x->xs, t, e[i].path,
                                                     e[i].perms, e[i].nperms))
        failed = "xs_set_permissions";
    }
    if (failed) {
      err = errno;
      xl.xs_transaction_end(x->xs, t, true);
      break;
    }
    if (xl.xs_transaction_end(x->xs, t, false)) break;
    err = errno;
    failed = "xs_transaction_end";
    if (err != EAGAIN) break; /* EAGAIN: a conflicting change; try again */
  }
  free_entries(e, n);
  if (failed) return xw_throw_errno(env, err, failed);
  return NULL;
}

static napi_value xstore_watch_op(napi_env env, napi_callback_info info,
                                  bool add) {
  napi_value argv[2];
  char path[XS_PATH_MAX + 1], token[256];
  const char *syscall = add ? "xs_watch" : "xs_unwatch";
  xstore_t *x = this_xs(env, info, 2, argv, syscall);
  if (!x || !arg_xs_path(env, argv[0], path) ||
      !xw_arg_path(env, argv[1], "token", token, sizeof token))
    return NULL;
  bool ok = add ? xl.xs_watch(x->xs, path, token)
                : xl.xs_unwatch(x->xs, path, token);
  if (!ok) return xw_throw_errno(env, errno, syscall);
  return NULL;
}

static napi_value xstore_watch(napi_env env, napi_callback_info info) {
  return xstore_watch_op(env, info, true);
}

static napi_value xstore_unwatch(napi_env env, napi_callback_info info) {
  return xstore_watch_op(env, info, false);
}

static napi_value xstore_ref(napi_env env, napi_callback_info info) {
  xstore_t *x = this_xs(env, info, 0, NULL, NULL);
  if (x) xw_handle_ref(&x->h, true);
  return NULL;
}

static napi_value xstore_unref(napi_env env, napi_callback_info info) {
  xstore_t *x = this_xs(env, info, 0, NULL, NULL);
  if (x) xw_handle_ref(&x->h, false);
  return NULL;
}

static napi_value xstore_close(napi_env env, napi_callback_info info) {
  xstore_t *x = this_xs(env, info, 0, NULL, NULL);
  if (x) xw_handle_close(&x->h);
  return NULL;
}

#define M(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_default, NULL}

bool xw_register_xen(napi_env env, napi_value exports) {
  napi_property_descriptor ev_methods[] = {
      M("bindUnbound", xevt_bind_unbound),
      M("bindInterdomain", xevt_bind_interdomain),
      M("notify", xevt_notify),
      M("unbind", xevt_unbind),
      M("ref", xevt_ref),
      M("unref", xevt_unref),
      M("close", xevt_close),
  };
  napi_property_descriptor xs_methods[] = {
      M("read", xstore_read),
      M("write", xstore_write),
      M("writeAll", xstore_write_all),
      M("rm", xstore_rm),
      M("directory", xstore_directory),
      M("getPermissions", xstore_get_perms),
      M("setPermissions", xstore_set_perms),
      M("watch", xstore_watch),
      M("unwatch", xstore_unwatch),
      M("ref", xstore_ref),
      M("unref", xstore_unref),
      M("close", xstore_close),
  };
  napi_value ev_cls, xs_cls;
  return xw_set_method(env, exports, "xenAvailable", xen_available, NULL) &&
         xw_set_method(env, exports, "xenGrantShare", grant_share, NULL) &&
         xw_set_method(env, exports, "xenGrantMap", grant_map, NULL) &&
         napi_define_class(env, "XenEventChannel", NAPI_AUTO_LENGTH, xevt_new,
                           NULL, sizeof ev_methods / sizeof ev_methods[0],
                           ev_methods, &ev_cls) == napi_ok &&
         napi_set_named_property(env, exports, "XenEventChannel", ev_cls) ==
             napi_ok &&
         napi_define_class(env, "XenStore", NAPI_AUTO_LENGTH, xstore_new,
                           NULL, sizeof xs_methods / sizeof xs_methods[0],
                           xs_methods, &xs_cls) == napi_ok &&
         napi_set_named_property(env, exports, "XenStore", xs_cls) == napi_ok;
}
