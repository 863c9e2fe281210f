// Plain C11 single-producer/single-consumer byte ring with memcpy and two pthreads: the
// machine's practical limit for bench/ring. Same shape as the xway core (free-running indices on
// separate cache lines, each side caching the other's index) so the gap measures the runtime,
// not the algorithm.
//
//   spsc stream <chunk> <capacity> <warm_ms> <dur_ms>   -> one JSON line
//   spsc rr <capacity> <warm_ms> <dur_ms>               -> one JSON line
//
// Stream bytes follow the pattern byte(s) = s % 251 for stream position s, so the consumer can
// check samples without a shared reference copy.

#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PERIOD 251
#define CHECK_EVERY 256 /* loop iterations between clock reads */
#define GRACE_NS 5000000000.0 /* hard deadline past the run: a stuck peer is an error, not a hang */

struct ring {
  _Alignas(64) _Atomic uint64_t tail; /* producer's line */
  uint64_t head_cache;
  _Alignas(64) _Atomic uint64_t head; /* consumer's line */
  uint64_t tail_cache;
  _Alignas(64) size_t cap;
  unsigned char *data;
};

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

// Keeps the compiler from dropping copies whose destination is only sampled.
static inline void escape(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

static void ring_init(struct ring *r, size_t cap) {
  memset(r, 0, sizeof *r);
  r->cap = cap;
  if (posix_memalign((void **)&r->data, 64, cap) != 0) { perror("posix_memalign"); exit(1); }
  memset(r->data, 0, cap);
}

static size_t ring_write(struct ring *r, const unsigned char *src, size_t len) {
  uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  size_t free = r->cap - (size_t)(tail - r->head_cache);
  if (free < len) {
    r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
    free = r->cap - (size_t)(tail - r->head_cache);
  }
  size_t n = len < free ? len : free;
  if (n == 0) return 0;
  size_t at = (size_t)tail & (r->cap - 1);
  size_t first = n < r->cap - at ? n : r->cap - at;
  memcpy(r->data + at, src, first);
  if (n > first) memcpy(r->data, src + first, n - first);
  atomic_store_explicit(&r->tail, tail + n, memory_order_release);
  return n;
}

static size_t ring_read(struct ring *r, unsigned char *dst, size_t len) {
  uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  size_t avail = (size_t)(r->tail_cache - head);
  if (avail < len) {
    r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
    avail = (size_t)(r->tail_cache - head);
  }
  size_t n = len < avail ? len : avail;
  if (n == 0) return 0;
  size_t at = (size_t)head & (r->cap - 1);
  size_t first = n < r->cap - at ? n : r->cap - at;
  memcpy(dst, r->data + at, first);
  if (n > first) memcpy(dst + first, r->data, n - first);
  escape(dst);
  atomic_store_explicit(&r->head, head + n, memory_order_release);
  return n;
}

// ---- stream --------------------------------------------------------------------------------

static struct {
  struct ring ring;
  size_t chunk;
  double warm_ns, dur_ns;
  _Atomic int go, done, failed;
  _Atomic uint64_t sent;
  uint64_t received, timed_bytes, bad;
  double timed_ns;
} S;

static void *stream_producer(void *arg) {
  (void)arg;
  unsigned char *src = malloc(S.chunk + PERIOD);
  for (size_t i = 0; i < S.chunk + PERIOD; i++) src[i] = (unsigned char)(i % PERIOD);
  while (!atomic_load(&S.go)) {}
  double deadline = now_ns() + S.warm_ns + S.dur_ns;
  uint64_t s = 0;
  for (unsigned it = 1;; it++) {
    s += ring_write(&S.ring, src + s % PERIOD, S.chunk);
    if (it % CHECK_EVERY == 0 && (atomic_load_explicit(&S.failed, memory_order_relaxed) || now_ns() > deadline)) break;
  }
  atomic_store(&S.sent, s);
  atomic_store(&S.done, 1);
  free(src);
  return NULL;
}

static void *stream_consumer(void *arg) {
  (void)arg;
  unsigned char *dst = malloc(S.chunk);
  while (!atomic_load(&S.go)) {}
  double start = now_ns(), mark = start + S.warm_ns;
  double hard = mark + S.dur_ns + GRACE_NS, t0 = 0;
  uint64_t s = 0, b0 = 0, bad = 0;
  for (unsigned it = 1;; it++) {
    size_t n = ring_read(&S.ring, dst, S.chunk);
    if (n) {
      bad += dst[0] != s % PERIOD;
      bad += dst[n - 1] != (s + n - 1) % PERIOD;
      s += n;
    } else if (atomic_load(&S.done) && s == atomic_load(&S.sent)) {
      break;
    }
    if (it % CHECK_EVERY == 0) {
      double t = now_ns();
      if (t0 == 0 && t >= mark) { t0 = t; b0 = s; }
      if (t > hard) { atomic_store(&S.failed, 1); break; }
    }
  }
  double t1 = now_ns();
  if (t0 == 0) { t0 = start; b0 = 0; }
  S.received = s;
  S.timed_bytes = s - b0;
  S.timed_ns = t1 - t0;
  S.bad = bad;
  free(dst);
  return NULL;
}

// ---- request/response ----------------------------------------------------------------------

static struct {
  struct ring a, b; /* a: ping -> pong, b: pong -> ping */
  double warm_ns, dur_ns;
  _Atomic int go, stop;
  double *samples;
  size_t nsamples, max_samples;
  uint64_t bad, trips;
  int failed;
} R;

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

#define RR_BATCH 8 /* round trips per timed sample, as in workers/common.mjs */

static void *rr_ping(void *arg) {
  (void)arg;
  unsigned char out = 0, in = 0;
  while (!atomic_load(&R.go)) {}
  double start = now_ns(), mark = start + R.warm_ns, end = mark + R.dur_ns, hard = end + GRACE_NS;
  double t = now_ns();
  for (uint64_t i = 0;;) {
    for (int k = 0; k < RR_BATCH; k++, i++) {
      out = (unsigned char)i;
      while (ring_write(&R.a, &out, 1) == 0) {}
      unsigned spins = 0;
      while (ring_read(&R.b, &in, 1) == 0) {
        if (++spins % (CHECK_EVERY * 64) == 0 && now_ns() > hard) { R.failed = 1; goto out; }
      }
      R.bad += in != out;
    }
    R.trips += RR_BATCH;
    double t2 = now_ns();
    if (t >= mark && R.nsamples < R.max_samples) R.samples[R.nsamples++] = (t2 - t) / RR_BATCH;
    t = t2;
    if (t > end) break;
  }
out:
  atomic_store(&R.stop, 1);
  return NULL;
}

static void *rr_pong(void *arg) {
  (void)arg;
  unsigned char b = 0;
  while (!atomic_load(&R.go)) {}
  for (unsigned it = 1;; it++) {
    if (ring_read(&R.a, &b, 1)) {
      while (ring_write(&R.b, &b, 1) == 0) {}
    } else if (it % CHECK_EVERY == 0 && atomic_load_explicit(&R.stop, memory_order_relaxed)) {
      break;
    }
  }
  return NULL;
}

static void run2(void *(*f)(void *), void *(*g)(void *), _Atomic int *go) {
  pthread_t a, b;
  if (pthread_create(&a, NULL, f, NULL) || pthread_create(&b, NULL, g, NULL)) { perror("pthread_create"); exit(1); }
  atomic_store(go, 1);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
}

static void usage(void) {
  fprintf(stderr, "usage: spsc stream <chunk> <capacity> <warm_ms> <dur_ms> | spsc rr <capacity> <warm_ms> <dur_ms>\n");
  exit(2);
}

static size_t pow2_arg(const char *s) {
  size_t v = strtoull(s, NULL, 10);
  if (v < 64 || (v & (v - 1))) usage();
  return v;
}

int main(int argc, char **argv) {
  if (argc == 6 && strcmp(argv[1], "stream") == 0) {
    S.chunk = strtoull(argv[2], NULL, 10);
    size_t cap = pow2_arg(argv[3]);
    if (S.chunk == 0 || S.chunk > cap) usage();
    S.warm_ns = atof(argv[4]) * 1e6;
    S.dur_ns = atof(argv[5]) * 1e6;
    ring_init(&S.ring, cap);
    run2(stream_producer, stream_consumer, &S.go);
    int ok = !S.failed && S.bad == 0 && S.received == atomic_load(&S.sent);
    printf("{\"ok\":%s,\"sent\":%llu,\"received\":%llu,\"bytes\":%llu,\"seconds\":%.9f,\"bad\":%llu}\n",
           ok ? "true" : "false", (unsigned long long)atomic_load(&S.sent), (unsigned long long)S.received,
           (unsigned long long)S.timed_bytes, S.timed_ns / 1e9, (unsigned long long)S.bad);
    return ok ? 0 : 1;
  }
  if (argc == 5 && strcmp(argv[1], "rr") == 0) {
    size_t cap = pow2_arg(argv[2]);
    R.warm_ns = atof(argv[3]) * 1e6;
    R.dur_ns = atof(argv[4]) * 1e6;
    ring_init(&R.a, cap);
    ring_init(&R.b, cap);
    R.max_samples = 1 << 20;
    R.samples = malloc(R.max_samples * sizeof(double));
    run2(rr_ping, rr_pong, &R.go);
    double median = 0;
    if (R.nsamples) {
      qsort(R.samples, R.nsamples, sizeof(double), cmp_double);
      median = R.samples[R.nsamples / 2];
    }
    int ok = !R.failed && R.bad == 0 && R.nsamples > 0;
    printf("{\"ok\":%s,\"trips\":%llu,\"samples\":%zu,\"medianUs\":%.4f,\"bad\":%llu}\n", ok ? "true" : "false",
           (unsigned long long)R.trips, R.nsamples, median / 1e3, (unsigned long long)R.bad);
    return ok ? 0 : 1;
  }
  usage();
}
