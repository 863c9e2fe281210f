/* Shared pages for the host platform.
 *
 * A segment is a memfd. It is mapped with MAP_FIXED over pages of a shared
 * WebAssembly.Memory, so the wasm ring core and JS views address the peer's
 * pages directly. WebAssembly.Memory cannot adopt foreign memory and Node 20
 * cannot make a SharedArrayBuffer over external memory; replacing pages
 * inside the memory's own reservation is what is left, and a shared memory
 * never moves (grow only commits more of its reservation), so the mapping
 * survives memory.grow().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addon.h"
#include "args.h"
#include "errors.h"

#define WASM_PAGE 65536
#define MAX_SEGMENT (1LL << 30)
/* A link's region grows a chunk at a time; it is sparse, so its size is a
 * budget of address space, not of memory. */
#define MAX_REGION (64LL << 30)
#define OS_PAGE 4096

/* memfd seals we require: without F_SEAL_SHRINK a peer holding the fd could
 * ftruncate it and our next access to the mapping would SIGBUS the whole
 * process. Growing is harmless but pointless, so it is sealed too. */
#define REQUIRED_SEALS (F_SEAL_SHRINK)
#define CREATE_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
/* A link region may grow (its creator adds chunks), never shrink. */
#define REGION_SEALS (F_SEAL_SHRINK | F_SEAL_SEAL)

static bool arg_size(napi_env env, napi_value v, const char *name, bool zero_ok,
                     int64_t max, int64_t *out) {
  if (!xw_arg_int(env, v, name, zero_ok ? 0 : WASM_PAGE, max, out))
    return false;
  if (*out % WASM_PAGE != 0) {
    xw_throw_range(env,
                   "The value of \"%s\" is out of range. It must be a "
                   "multiple of %d (the WebAssembly page size). Received "
                   "%lld",
                   name, WASM_PAGE, (long long)*out);
    return false;
  }
  return true;
}

/* segmentCreate(size) -> fd */
static napi_value segment_create(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  int64_t size;
  if (!xw_args(env, info, 1, argv, NULL)) return NULL;
  if (!arg_size(env, argv[0], "size", false, MAX_SEGMENT, &size)) return NULL;

  /* A memfd has no name in any file system: only holders of the descriptor
   * (us, and whoever we pass it to) can reach the pages. */
  int fd = memfd_create("xway-channel", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return xw_throw_errno(env, errno, "memfd_create");
  if (ftruncate(fd, (off_t)size) != 0) {
    int err = errno;
    close(fd);
    return xw_throw_errno(env, err, "ftruncate");
  }
  if (fcntl(fd, F_ADD_SEALS, CREATE_SEALS) != 0) {
    int err = errno;
    close(fd);
    return xw_throw_errno(env, err, "fcntl");
  }
  napi_create_int32(env, fd, &result);
  return result;
}

/* regionCreate(size) -> fd: a link's region, sealed against shrinking only. */
static napi_value region_create(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  int64_t size;
  if (!xw_args(env, info, 1, argv, NULL)) return NULL;
  if (!arg_size(env, argv[0], "size", false, MAX_REGION, &size)) return NULL;
  int fd = memfd_create("xway-link", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return xw_throw_errno(env, errno, "memfd_create");
  if (ftruncate(fd, (off_t)size) != 0 || fcntl(fd, F_ADD_SEALS, REGION_SEALS) != 0) {
    int err = errno;
    close(fd);
    return xw_throw_errno(env, err, "ftruncate");
  }
  napi_create_int32(env, fd, &result);
  return result;
}

/* regionGrow(fd, size): the region's new size, never smaller than it is. */
static napi_value region_grow(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int fd;
  int64_t size;
  struct stat st;
  if (!xw_args(env, info, 2, argv, NULL)) return NULL;
  if (!xw_arg_fd(env, argv[0], "fd", &fd) ||
      !arg_size(env, argv[1], "size", false, MAX_REGION, &size))
    return NULL;
  if (fstat(fd, &st) != 0) return xw_throw_errno(env, errno, "fstat");
  if (st.st_size > size)
    return xw_throw_errno_range(env, EINVAL, "ftruncate", "a region never shrinks");
  if (ftruncate(fd, (off_t)size) != 0) return xw_throw_errno(env, errno, "ftruncate");
  return NULL;
}

/* regionDiscard(fd, fileOffset, length): gives the pages of that range back
 * to the system (a hole punched in the memfd: every mapping then reads zeros
 * there, and a write allocates a fresh page). Both in whole 4 KiB pages. */
static napi_value region_discard(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int fd;
  int64_t at, len;
  if (!xw_args(env, info, 3, argv, NULL)) return NULL;
  if (!xw_arg_fd(env, argv[0], "fd", &fd) ||
      !xw_arg_int(env, argv[1], "fileOffset", 0, MAX_REGION, &at) ||
      !xw_arg_int(env, argv[2], "length", 0, MAX_REGION, &len))
    return NULL;
  if (at % OS_PAGE != 0 || len % OS_PAGE != 0) {
    xw_throw_range(env, "The value of \"fileOffset\" and \"length\" must be multiples of %d", OS_PAGE);
    return NULL;
  }
  if (len > 0 && fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)at, (off_t)len) != 0)
    return xw_throw_errno(env, errno, "fallocate");
  return NULL;
}

/* Shared validation of (view, offset, size): returns the target address. */
static uint8_t *arg_range(napi_env env, napi_value *argv, int64_t *size_out) {
  uint8_t *base;
  size_t len;
  int64_t offset, size;
  if (!xw_arg_shared_view(env, argv[0], "view", &base, &len)) return NULL;
  if (!arg_size(env, argv[1], "offset", true, INT64_MAX / 2, &offset) ||
      !arg_size(env, argv[2], "size", false, MAX_SEGMENT, &size))
    return NULL;
  if ((uint64_t)offset + (uint64_t)size > len) {
    xw_throw_range(env,
                   "The range offset %lld + size %lld is out of range. It "
                   "must lie within the view (%zu bytes)",
                   (long long)offset, (long long)size, len);
    return NULL;
  }
  *size_out = size;
  return base + offset;
}

/* segmentMap(view, offset, size, fd[, fileOffset]) */
static napi_value segment_map(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int64_t size, file_offset = 0;
  int fd;
  struct stat st;
  napi_valuetype t;
  if (!xw_args(env, info, 5, argv, NULL)) return NULL;
  uint8_t *addr = arg_range(env, argv, &size);
  if (!addr || !xw_arg_fd(env, argv[3], "fd", &fd)) return NULL;
  if (napi_typeof(env, argv[4], &t) == napi_ok && t != napi_undefined &&
      !arg_size(env, argv[4], "fileOffset", true, MAX_REGION, &file_offset))
    return NULL;

  if (fstat(fd, &st) != 0) return xw_throw_errno(env, errno, "fstat");
  if (!S_ISREG(st.st_mode))
    return xw_throw_errno_range(env, EINVAL, "mmap",
                                "descriptor is not a shared memory segment");
  if (st.st_size < file_offset + size) {
    char detail[160];
    snprintf(detail, sizeof detail,
             "segment has %lld bytes, fewer than the %lld bytes to map from %lld",
             (long long)st.st_size, (long long)size, (long long)file_offset);
    return xw_throw_errno_range(env, EINVAL, "mmap", detail);
  }
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & REQUIRED_SEALS) != REQUIRED_SEALS)
    return xw_throw_errno_range(
        env, EPERM, "mmap",
        "segment is not sealed against shrinking (use segmentCreate)");

  /* MAP_FIXED atomically replaces the wasm pages; there is no window in
   * which the range is unmapped. */
  void *p = mmap(addr, (size_t)size, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_FIXED, fd, (off_t)file_offset);
  if (p == MAP_FAILED) return xw_throw_errno(env, errno, "mmap");
  return NULL;
}

/* segmentUnmap(view, offset, size) */
static napi_value segment_unmap(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t size;
  if (!xw_args(env, info, 3, argv, NULL)) return NULL;
  uint8_t *addr = arg_range(env, argv, &size);
  if (!addr) return NULL;
  /* Not munmap: the range belongs to the wasm memory and must stay valid.
   * Fresh private zero pages are what it held before the segment. */
  void *p = mmap(addr, (size_t)size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (p == MAP_FAILED) return xw_throw_errno(env, errno, "mmap");
  return NULL;
}

/* closeFd(fd) */
static napi_value close_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!xw_args(env, info, 1, argv, NULL)) return NULL;
  if (!xw_arg_fd(env, argv[0], "fd", &fd)) return NULL;
  /* Linux always releases the descriptor, even when close reports EINTR,
   * so never retry. */
  if (close(fd) != 0 && errno != EINTR)
    return xw_throw_errno(env, errno, "close");
  return NULL;
}

bool xw_register_segment(napi_env env, napi_value exports) {
  return xw_set_method(env, exports, "segmentCreate", segment_create, NULL) &&
         xw_set_method(env, exports, "regionCreate", region_create, NULL) &&
         xw_set_method(env, exports, "regionGrow", region_grow, NULL) &&
         xw_set_method(env, exports, "regionDiscard", region_discard, NULL) &&
         xw_set_method(env, exports, "segmentMap", segment_map, NULL) &&
         xw_set_method(env, exports, "segmentUnmap", segment_unmap, NULL) &&
         xw_set_method(env, exports, "closeFd", close_fd, NULL);
}
