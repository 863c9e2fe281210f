/* Receive memory that stays mapped.
 *
 * A ring socket copies what it reads into 512 KiB Buffers (src/socket/
 * receive-pool.ts); V8 frees them at its next GC, dozens at once. glibc then
 * gives the top of its heap back to the kernel (trimming past 2x its dynamic
 * mmap threshold, about 1 MiB by then), so the next slabs are page-faulted in
 * again: at 64 KiB a read, a receiving process spent a third of its CPU in
 * those faults, and how many happened decided whether a run did 5 or 17 GB/s.
 *
 * keepHeapMemory() fixes the two thresholds at what glibc's own adjustment
 * tends to (32 MiB, its ceiling for the mmap threshold) and keeps up to
 * 64 MiB of free heap mapped, as MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_
 * would. It changes the whole process, so the caller asks only when it
 * receives on a ring and the user has not said otherwise. Not glibc: false.
 */
#include <stdbool.h>
#include <stdlib.h> /* defines __GLIBC__ on glibc */
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "addon.h"
#include "args.h"

#define MMAP_THRESHOLD (32 << 20)
#define TRIM_THRESHOLD (64 << 20)

/* keepHeapMemory(): true when both thresholds were set. */
static napi_value keep_heap_memory(napi_env env, napi_callback_info info) {
  (void)info;
  bool ok = false;
#ifdef __GLIBC__
  ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 &&
       mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1;
#endif
  napi_value result;
  napi_get_boolean(env, ok, &result);
  return result;
}

bool xw_register_heap(napi_env env, napi_value exports) {
  return xw_set_method(env, exports, "keepHeapMemory", keep_heap_memory, NULL);
}
