/*
 * replay: the measuring half of `make bench` (bench/run.py is the driving
 * half). One process measures one allocator once; the driver runs it many
 * times and takes medians. See bench/README.md and
 * ../shared/design/bench-method.md for the method.
 *
 *   replay [--breakdown] [--slow NS] ALLOC TRACE
 *                                            replay a trace (.xz or plain)
 *   replay --shutdown ALLOC LIVE TOTAL SIZE REPS
 *                                            time shutdown_memory_manager(1, 0)
 *   replay --scale ALLOC LIVE_MIB OPS SEED   a seeded alloc/realloc/free mix
 *                                            over LIVE_MIB of live data
 *
 * ALLOC is one of zendmm, php (PHP 8.2's ZendMM from libphp8.2.so), glibc,
 * jemalloc, mimalloc, tcmalloc. Each is dlopen'ed and called through
 * function pointers, the same way for all of them. zendmm's library is
 * $ZENDMM_LIB (default target/release/libzendmm.so).
 *
 * Every mode prints one machine-readable line per result, `RESULT k=v ...`
 * (and `BREAKDOWN`, `SLOW` and `SLOWSUM k=v ...` lines), on stdout; a failed
 * check prints `replay: ...` on stderr and exits 3.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

/* ------------------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------------- */

static const char *g_alloc_name = "?";

__attribute__((noreturn, format(printf, 1, 2)))
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "replay (%s): ", g_alloc_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(3);
}

/* Profiling aid: with REPLAY_PERF_CTL=path (the control fifo of
 * `perf record -D -1 --control fifo:path`), only the timed loop is sampled. */
static void perf_control(const char *cmd)
{
    const char *path = getenv("REPLAY_PERF_CTL");
    if (!path)
        return;
    FILE *f = fopen(path, "w");
    if (!f)
        die("REPLAY_PERF_CTL: cannot open the perf control fifo");
    fprintf(f, "%s\n", cmd);
    fclose(f);
}

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Anonymous memory outside every allocator under test. */
static void *map_anon(size_t bytes)
{
    if (bytes == 0)
        bytes = 1;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        die("mmap %zu bytes: %s", bytes, strerror(errno));
    return p;
}

static void *remap_anon(void *p, size_t old_bytes, size_t new_bytes)
{
    void *q = mremap(p, old_bytes, new_bytes, MREMAP_MAYMOVE);
    if (q == MAP_FAILED)
        die("mremap to %zu bytes: %s", new_bytes, strerror(errno));
    return q;
}

/* Writes every page (keeping its contents) so it is resident before timing. */
static void pretouch(void *p, size_t bytes)
{
    volatile char *c = p;
    for (size_t i = 0; i < bytes; i += 4096)
        c[i] = c[i];
    if (bytes)
        c[bytes - 1] = c[bytes - 1];
}

/* Resident set now, in KiB (/proc/self/statm). */
static long rss_kib(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &size, &resident) != 2)
        die("cannot read /proc/self/statm");
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Peak resident set (VmHWM) in KiB, or -1. */
static long hwm_kib(void)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) {
            v = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Resets VmHWM to the current RSS (Linux >= 4.0); false when unsupported. */
static bool reset_hwm(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return false;
    bool ok = fputs("5", f) >= 0;
    ok = (fclose(f) == 0) && ok;
    return ok;
}

/* ------------------------------------------------------------------------
 * Allocators
 * ---------------------------------------------------------------------- */

typedef struct {
    const char *name;
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*realloc)(void *, size_t);
    void *(*calloc)(size_t, size_t);
    /* Request allocators only (zendmm, php). */
    void (*start)(void);
    void (*shutdown)(bool, bool);
    size_t (*peak)(bool);
    size_t (*usage)(bool);
    bool request;
    /* mimalloc only. */
    void (*mi_process_info)(size_t *, size_t *, size_t *, size_t *, size_t *, size_t *, size_t *, size_t *);
    void *handle;
} allocator;

static allocator A;

static void *need(void *h, const char *lib, const char *sym)
{
    void *p = dlsym(h, sym);
    if (!p)
        die("%s: no symbol %s", lib, sym);
    return p;
}

/* jemalloc's Debian build uses initial-exec TLS, which dlopen can only place
 * in the static TLS surplus: re-exec once with a larger surplus. */
static void reexec_for_static_tls(char **argv)
{
    const char *t = getenv("GLIBC_TUNABLES");
    if (t && strstr(t, "glibc.rtld.optional_static_tls"))
        die("dlopen still fails with GLIBC_TUNABLES=%s", t);
    char buf[1024];
    snprintf(buf, sizeof buf, "%s%sglibc.rtld.optional_static_tls=65536", t ? t : "", t ? ":" : "");
    setenv("GLIBC_TUNABLES", buf, 1);
    execv("/proc/self/exe", argv);
    die("re-exec failed: %s", strerror(errno));
}

static void load_allocator(const char *name, char **argv)
{
    memset(&A, 0, sizeof A);
    A.name = name;
    g_alloc_name = name;
    const char *lib = NULL;
    int flags = RTLD_NOW | RTLD_LOCAL;
    const char *m = "malloc", *f = "free", *r = "realloc", *c = "calloc";

    if (!strcmp(name, "zendmm")) {
        lib = getenv("ZENDMM_LIB");
        if (!lib || !*lib)
            lib = "target/release/libzendmm.so";
        A.request = true;
    } else if (!strcmp(name, "php")) {
        lib = "/usr/lib/libphp8.2.so";
        flags = RTLD_NOW | RTLD_GLOBAL;
        unsetenv("USE_ZEND_ALLOC");
        unsetenv("USE_TRACKED_ALLOC");
        unsetenv("USE_ZEND_ALLOC_HUGE_PAGES");
        A.request = true;
    } else if (!strcmp(name, "glibc")) {
        lib = "libc.so.6";
    } else if (!strcmp(name, "jemalloc")) {
        lib = "libjemalloc.so.2";
    } else if (!strcmp(name, "mimalloc")) {
        lib = "libmimalloc.so.2";
        m = "mi_malloc", f = "mi_free", r = "mi_realloc", c = "mi_calloc";
    } else if (!strcmp(name, "tcmalloc")) {
        lib = "libtcmalloc_minimal.so.4";
        m = "tc_malloc", f = "tc_free", r = "tc_realloc", c = "tc_calloc";
    } else {
        die("unknown allocator '%s' (zendmm php glibc jemalloc mimalloc tcmalloc)", name);
    }

    void *h = dlopen(lib, flags);
    if (!h) {
        const char *err = dlerror();
        if (err && strstr(err, "static TLS"))
            reexec_for_static_tls(argv);
        die("dlopen %s: %s", lib, err ? err : "?");
    }
    A.handle = h;
    if (A.request) {
        A.malloc = (void *(*)(size_t))need(h, lib, "_emalloc");
        A.free = (void (*)(void *))need(h, lib, "_efree");
        A.realloc = (void *(*)(void *, size_t))need(h, lib, "_erealloc");
        A.calloc = (void *(*)(size_t, size_t))need(h, lib, "_ecalloc");
        A.start = (void (*)(void))need(h, lib, "start_memory_manager");
        A.shutdown = (void (*)(bool, bool))need(h, lib, "shutdown_memory_manager");
        A.peak = (size_t (*)(bool))need(h, lib, "zend_memory_peak_usage");
        A.usage = (size_t (*)(bool))need(h, lib, "zend_memory_usage");
        A.start();
    } else {
        A.malloc = (void *(*)(size_t))need(h, lib, m);
        A.free = (void (*)(void *))need(h, lib, f);
        A.realloc = (void *(*)(void *, size_t))need(h, lib, r);
        A.calloc = (void *(*)(size_t, size_t))need(h, lib, c);
        if (!strcmp(name, "mimalloc"))
            A.mi_process_info = dlsym(h, "mi_process_info");
    }
}

/* malloc-style realloc(p, 0) may free p and return NULL (glibc does); PHP's
 * erealloc(p, 0) returns a block. Used only when a trace has such a call. */
static void *(*g_real_realloc)(void *, size_t);
static void *realloc_nonzero(void *p, size_t n)
{
    return g_real_realloc(p, n ? n : 1);
}

/* The allocator's own peak, or 0 when it has none. */
static size_t own_peak_now(void)
{
    if (A.request)
        return A.peak(true);
    if (A.mi_process_info) {
        size_t el, ut, st, rss, prss, commit, pcommit, faults;
        A.mi_process_info(&el, &ut, &st, &rss, &prss, &commit, &pcommit, &faults);
        return pcommit;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Trace parsing
 * ---------------------------------------------------------------------- */

enum { K_A = 1, K_C = 2, K_R = 3, K_F = 4, K_Q = 5 };
#define ID_BITS 28
#define ID_MASK ((1u << ID_BITS) - 1)
#define KIND(w0) (((w0) >> ID_BITS) & 7u)
#define CHECK_FLAG (1u << 31) /* r: the old block's first byte must survive */

/* a: w0 = A|id, sz = size.  c: w0 = C|id, w1 = n, sz = elem size.
 * r: w0 = R|new (|CHECK_FLAG), w1 = old (0: NULL), sz = size.
 * f: w0 = F|id, sz = size of the freed block (for the breakdown).
 * q: w0 = Q, w1 = live count, sz = offset of the live ids in g_live. */
typedef struct {
    uint32_t w0, w1;
    uint64_t sz;
} event;

static event *g_ev;
static size_t g_nev, g_capev;
static uint32_t *g_live; /* ids live at each q, for malloc-style allocators */
static size_t g_nlive, g_caplive;
static uint32_t g_maxid;
static bool g_has_r0;

/* Parse-time model of the trace: size+1 of every live id (0: not live). */
static uint64_t *g_sizes;
static size_t g_capsizes;
static uint32_t g_req_maxid; /* largest id used since the last q */
static size_t g_nlive_now;

static inline uint8_t mark(uint32_t id)
{
    return (uint8_t)((id * 37u + 11u) | 1u);
}

static void push_event(uint32_t w0, uint32_t w1, uint64_t sz)
{
    if (g_nev == g_capev) {
        size_t ncap = g_capev ? g_capev * 2 : (1u << 20);
        g_ev = g_capev ? remap_anon(g_ev, g_capev * sizeof *g_ev, ncap * sizeof *g_ev)
                       : map_anon(ncap * sizeof *g_ev);
        g_capev = ncap;
    }
    g_ev[g_nev++] = (event){w0, w1, sz};
}

static void model_grow(uint32_t id)
{
    if (id < g_capsizes)
        return;
    size_t ncap = g_capsizes ? g_capsizes : 65536;
    while (ncap <= id)
        ncap *= 2;
    g_sizes = g_capsizes ? remap_anon(g_sizes, g_capsizes * 8, ncap * 8) : map_anon(ncap * 8);
    g_capsizes = ncap;
}

static void push_q(unsigned long lineno)
{
    (void)lineno;
    size_t off = g_nlive;
    uint32_t n = 0;
    for (uint32_t id = 1; id <= g_req_maxid && id < g_capsizes; id++) {
        if (!g_sizes[id])
            continue;
        if (g_nlive == g_caplive) {
            size_t ncap = g_caplive ? g_caplive * 2 : 65536;
            g_live = g_caplive ? remap_anon(g_live, g_caplive * 4, ncap * 4) : map_anon(ncap * 4);
            g_caplive = ncap;
        }
        g_live[g_nlive++] = id;
        g_sizes[id] = 0;
        n++;
    }
    push_event((uint32_t)K_Q << ID_BITS, n, off);
    g_req_maxid = 0;
    g_nlive_now = 0;
}

static uint64_t parse_u64(const char **pp, unsigned long lineno)
{
    const char *p = *pp;
    while (*p == ' ')
        p++;
    if (*p < '0' || *p > '9')
        die("trace line %lu: number expected", lineno);
    uint64_t v = 0;
    while (*p >= '0' && *p <= '9') {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            die("trace line %lu: number too large", lineno);
        v = v * 10 + d;
        p++;
    }
    *pp = p;
    return v;
}

static uint32_t parse_id(const char **pp, unsigned long lineno, bool zero_ok)
{
    uint64_t v = parse_u64(pp, lineno);
    if ((v == 0 && !zero_ok) || v > ID_MASK)
        die("trace line %lu: bad id %llu", lineno, (unsigned long long)v);
    return (uint32_t)v;
}

static void model_new(uint32_t id, uint64_t size, unsigned long lineno)
{
    model_grow(id);
    if (g_sizes[id])
        die("trace line %lu: id %u is already live", lineno, id);
    g_sizes[id] = size + 1;
    if (id > g_req_maxid)
        g_req_maxid = id;
    if (id > g_maxid)
        g_maxid = id;
    g_nlive_now++;
}

static uint64_t model_drop(uint32_t id, unsigned long lineno)
{
    if (id >= g_capsizes || !g_sizes[id])
        die("trace line %lu: id %u is not live", lineno, id);
    uint64_t size = g_sizes[id] - 1;
    g_sizes[id] = 0;
    g_nlive_now--;
    return size;
}

static void parse_trace(const char *path)
{
    size_t len = strlen(path);
    bool xz = len > 3 && !strcmp(path + len - 3, ".xz");
    FILE *fp;
    if (xz) {
        if (access(path, R_OK) != 0)
            die("%s: %s", path, strerror(errno));
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "xz -dc -- '%s'", path);
        fp = popen(cmd, "r");
    } else {
        fp = fopen(path, "r");
    }
    if (!fp)
        die("%s: %s", path, strerror(errno));
    static char iobuf[1 << 20];
    setvbuf(fp, iobuf, _IOFBF, sizeof iobuf);

    char line[512];
    unsigned long lineno = 0;
    bool since_q = false;
    while (fgets(line, sizeof line, fp)) {
        lineno++;
        size_t l = strlen(line);
        if (l && line[l - 1] != '\n' && !feof(fp)) {
            if (line[0] != '#')
                die("trace line %lu: too long", lineno);
            int ch;
            while ((ch = getc(fp)) != EOF && ch != '\n')
                ;
            continue;
        }
        const char *p = line + 1;
        switch (line[0]) {
        case '#':
        case '\n':
            continue;
        case 'a': {
            uint32_t id = parse_id(&p, lineno, false);
            uint64_t size = parse_u64(&p, lineno);
            model_new(id, size, lineno);
            push_event((uint32_t)K_A << ID_BITS | id, 0, size);
            break;
        }
        case 'c': {
            uint32_t id = parse_id(&p, lineno, false);
            uint64_t n = parse_u64(&p, lineno);
            uint64_t size = parse_u64(&p, lineno);
            if (size && n > UINT64_MAX / size)
                die("trace line %lu: calloc size overflows", lineno);
            if (n > UINT32_MAX) {
                size *= n;
                n = 1;
            }
            model_new(id, n * size, lineno);
            push_event((uint32_t)K_C << ID_BITS | id, (uint32_t)n, size);
            break;
        }
        case 'r': {
            uint32_t old = parse_id(&p, lineno, true);
            uint32_t nw = parse_id(&p, lineno, false);
            uint64_t size = parse_u64(&p, lineno);
            uint64_t oldsize = old ? model_drop(old, lineno) : 0;
            model_new(nw, size, lineno);
            uint32_t w0 = (uint32_t)K_R << ID_BITS | nw;
            if (old && oldsize && size)
                w0 |= CHECK_FLAG;
            if (size == 0)
                g_has_r0 = true;
            push_event(w0, old, size);
            break;
        }
        case 'f': {
            uint32_t id = parse_id(&p, lineno, false);
            uint64_t size = model_drop(id, lineno);
            push_event((uint32_t)K_F << ID_BITS | id, 0, size);
            break;
        }
        case 'q':
            push_q(lineno);
            since_q = false;
            continue;
        default:
            die("trace line %lu: unknown event '%c'", lineno, line[0]);
        }
        while (*p == ' ')
            p++;
        if (*p != '\n' && *p != '\0')
            die("trace line %lu: trailing text", lineno);
        since_q = true;
    }
    int rc = xz ? pclose(fp) : fclose(fp);
    if (rc != 0)
        die("%s: reading failed (status %d)", path, rc);
    if (since_q && g_nlive_now)
        push_q(lineno);
    if (g_nev == 0)
        die("%s: no events", path);
    if (g_sizes)
        munmap(g_sizes, g_capsizes * 8);
    g_sizes = NULL;
}

/* ------------------------------------------------------------------------
 * Trace replay
 * ---------------------------------------------------------------------- */

static unsigned char **g_tab; /* id -> block, anonymous and pre-touched */
static uint64_t g_q_ns;
static size_t g_own_peak;

__attribute__((noinline, cold, noreturn))
static void fail_event(size_t i, const char *what)
{
    event e = g_ev[i];
    die("event %zu (kind %u, id %u, aux %u, size %llu): %s", i, KIND(e.w0), e.w0 & ID_MASK, e.w1,
        (unsigned long long)e.sz, what);
}

static inline __attribute__((always_inline)) void do_event(size_t i)
{
    const event e = g_ev[i];
    const uint32_t id = e.w0 & ID_MASK;
    unsigned char *p;
    switch (KIND(e.w0)) {
    case K_A:
        p = A.malloc(e.sz);
        if (__builtin_expect(!p, 0))
            fail_event(i, "allocation returned NULL");
        if (e.sz) {
            p[0] = mark(id);
            p[e.sz - 1] = mark(id);
        }
        g_tab[id] = p;
        break;
    case K_C: {
        uint64_t total = (uint64_t)e.w1 * e.sz;
        p = A.calloc(e.w1, e.sz);
        if (__builtin_expect(!p, 0))
            fail_event(i, "calloc returned NULL");
        if (total) {
            if (__builtin_expect(p[0] | p[total - 1], 0))
                fail_event(i, "calloc block is not zeroed");
            p[0] = mark(id);
            p[total - 1] = mark(id);
        }
        g_tab[id] = p;
        break;
    }
    case K_R:
        p = A.realloc(e.w1 ? g_tab[e.w1] : NULL, e.sz);
        if (__builtin_expect(!p, 0))
            fail_event(i, "realloc returned NULL");
        if ((e.w0 & CHECK_FLAG) && __builtin_expect(p[0] != mark(e.w1), 0))
            fail_event(i, "realloc lost the first byte");
        if (e.sz) {
            p[0] = mark(id);
            p[e.sz - 1] = mark(id);
        }
        g_tab[id] = p;
        break;
    case K_F:
        A.free(g_tab[id]);
        break;
    case K_Q: {
        uint64_t t0;
        if (A.request) {
            size_t pk = A.peak(true);
            if (pk > g_own_peak)
                g_own_peak = pk;
            t0 = now_ns();
            A.shutdown(true, false);
        } else {
            t0 = now_ns();
            const uint32_t *live = g_live + e.sz;
            for (uint32_t j = 0; j < e.w1; j++)
                A.free(g_tab[live[j]]);
        }
        g_q_ns += now_ns() - t0;
        break;
    }
    default:
        fail_event(i, "corrupt event");
    }
}

__attribute__((noinline))
static void replay_all(void)
{
    const size_t n = g_nev;
    for (size_t i = 0; i < n; i++)
        do_event(i);
}

/* Breakdown: kind (a c r f q) x size class (small, large, huge). */
enum { NKIND = 6, NCLASS = 3 };
static uint64_t g_bd_cyc[NKIND][NCLASS], g_bd_cnt[NKIND][NCLASS];

/* --slow: events whose fenced time reaches g_slow_cyc cycles (0: off), the
 * first SLOW_MAX of them kept for the report, all of them counted. */
enum { SLOW_MAX = 4096 };
static uint64_t g_slow_cyc, g_slow_count, g_slow_total;
static uint32_t g_slow_n, g_slow_event[SLOW_MAX];
static uint64_t g_slow_len[SLOW_MAX];

static inline int size_class(uint64_t sz)
{
    return sz <= 3072 ? 0 : sz <= 2093056 ? 1 : 2;
}

__attribute__((noinline))
static void replay_breakdown(void)
{
    const size_t n = g_nev;
    for (size_t i = 0; i < n; i++) {
        const event e = g_ev[i];
        unsigned k = KIND(e.w0);
        uint64_t sz = k == K_C ? (uint64_t)e.w1 * e.sz : k == K_Q ? 0 : e.sz;
        int cls = size_class(sz);
        _mm_lfence();
        uint64_t t0 = __rdtsc();
        _mm_lfence();
        do_event(i);
        unsigned aux;
        uint64_t t1 = __rdtscp(&aux);
        g_bd_cyc[k][cls] += t1 - t0;
        g_bd_cnt[k][cls]++;
        if (g_slow_cyc && t1 - t0 >= g_slow_cyc) {
            g_slow_count++;
            g_slow_total += t1 - t0;
            if (g_slow_n < SLOW_MAX) {
                g_slow_event[g_slow_n] = (uint32_t)i;
                g_slow_len[g_slow_n++] = t1 - t0;
            }
        }
    }
}

/* Cycles of an empty measured region (the breakdown's own overhead). */
static double rdtsc_overhead(void)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 10000; i++) {
        _mm_lfence();
        uint64_t t0 = __rdtsc();
        _mm_lfence();
        unsigned aux;
        uint64_t t1 = __rdtscp(&aux);
        if (t1 - t0 < best)
            best = t1 - t0;
    }
    return (double)best;
}

/* TSC ticks per ns, measured against CLOCK_MONOTONIC over about 20 ms. */
static double tsc_per_ns(void)
{
    uint64_t n0 = now_ns(), c0 = __rdtsc(), n1;
    do
        n1 = now_ns();
    while (n1 - n0 < 20000000u);
    return (double)(__rdtsc() - c0) / (double)(n1 - n0);
}

static const char *basename_of(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The --slow report: one line per slow event kept, then their sum. */
static void print_slow(const char *name, double overhead, double ns_per_cyc, double slow_ns)
{
    static const char kinds[] = "?acrfq";
    for (uint32_t j = 0; j < g_slow_n; j++) {
        const event e = g_ev[g_slow_event[j]];
        unsigned k = KIND(e.w0);
        uint64_t sz = k == K_C ? (uint64_t)e.w1 * e.sz : k == K_Q ? 0 : e.sz;
        printf("SLOW alloc=%s trace=%s event=%u kind=%c size=%llu ns=%.0f\n", A.name, name,
               g_slow_event[j] + 1, kinds[k], (unsigned long long)sz,
               ((double)g_slow_len[j] - overhead) * ns_per_cyc);
    }
    printf("SLOWSUM alloc=%s trace=%s min_ns=%.0f count=%llu listed=%u ns_total=%.0f\n", A.name,
           name, slow_ns, (unsigned long long)g_slow_count, g_slow_n,
           ((double)g_slow_total - overhead * (double)g_slow_count) * ns_per_cyc);
}

static int mode_trace(const char *trace, bool breakdown, double slow_ns)
{
    parse_trace(trace);
    if (g_has_r0 && !A.request) {
        g_real_realloc = A.realloc;
        A.realloc = realloc_nonzero;
    }
    size_t tab_bytes = ((size_t)g_maxid + 1) * sizeof *g_tab;
    g_tab = map_anon(tab_bytes);
    pretouch(g_tab, tab_bytes);
    pretouch(g_ev, g_nev * sizeof *g_ev);
    if (g_live)
        pretouch(g_live, g_nlive * sizeof *g_live);

    char name[256];
    snprintf(name, sizeof name, "%s", basename_of(trace));
    char *dot = strstr(name, ".trace");
    if (dot)
        *dot = 0;

    double overhead = breakdown ? rdtsc_overhead() : 0;
    if (slow_ns > 0)
        g_slow_cyc = (uint64_t)(slow_ns * tsc_per_ns() + overhead);
    struct rusage ru0, ru1;
    bool hwm_ok = reset_hwm();
    long rss0 = rss_kib();
    getrusage(RUSAGE_SELF, &ru0);
    perf_control("enable");
    uint64_t tsc0 = __rdtsc();
    uint64_t t0 = now_ns();
    if (breakdown)
        replay_breakdown();
    else
        replay_all();
    uint64_t t1 = now_ns();
    perf_control("disable");
    uint64_t tsc1 = __rdtsc();
    getrusage(RUSAGE_SELF, &ru1);
    long peak = hwm_ok ? hwm_kib() : ru1.ru_maxrss;
    size_t own = own_peak_now();
    if (own > g_own_peak)
        g_own_peak = own;

    uint64_t ns = t1 - t0;
    printf("RESULT mode=trace alloc=%s trace=%s events=%zu ns=%llu ns_per_event=%.3f q_ns=%llu "
           "rss_before_kib=%ld rss_peak_kib=%ld rss_added_kib=%ld minflt=%ld majflt=%ld own_peak=%zu "
           "max_id=%u breakdown=%d\n",
           A.name, name, g_nev, (unsigned long long)ns, (double)ns / (double)g_nev,
           (unsigned long long)g_q_ns, rss0, peak, peak - rss0, ru1.ru_minflt - ru0.ru_minflt,
           ru1.ru_majflt - ru0.ru_majflt, g_own_peak, g_maxid, breakdown ? 1 : 0);
    if (breakdown) {
        static const char kinds[] = "?acrfq";
        static const char *classes[] = {"small", "large", "huge"};
        double ns_per_cyc = (double)ns / (double)(tsc1 - tsc0);
        for (int k = 1; k < NKIND; k++)
            for (int c = 0; c < NCLASS; c++) {
                if (!g_bd_cnt[k][c])
                    continue;
                double cyc = (double)g_bd_cyc[k][c] - overhead * (double)g_bd_cnt[k][c];
                if (cyc < 0)
                    cyc = 0;
                printf("BREAKDOWN alloc=%s trace=%s kind=%c class=%s count=%llu ns_total=%.0f "
                       "ns_per_op=%.3f\n",
                       A.name, name, kinds[k], k == K_Q ? "-" : classes[c],
                       (unsigned long long)g_bd_cnt[k][c], cyc * ns_per_cyc,
                       cyc * ns_per_cyc / (double)g_bd_cnt[k][c]);
            }
        if (g_slow_cyc)
            print_slow(name, overhead, ns_per_cyc, slow_ns);
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Request shutdown with LIVE of TOTAL small blocks live
 * ---------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    size_t size;
    uint32_t version;
    size_t usage, peak, real_usage, real_peak, limit, segments;
    size_t rest[16];
} zendmm_stats_t;

static int mode_shutdown(size_t live, size_t total, size_t size, int reps)
{
    if (!A.request)
        die("--shutdown needs a request allocator (zendmm or php)");
    if (live == 0 || live > total || size == 0 || reps < 1)
        die("--shutdown: need 0 < LIVE <= TOTAL, SIZE > 0, REPS > 0");
    bool (*stats)(const void *, zendmm_stats_t *) = dlsym(A.handle, "zendmm_stats");
    unsigned char **blocks = map_anon(total * sizeof *blocks);
    pretouch(blocks, total * sizeof *blocks);
    uint64_t *ns = map_anon((size_t)reps * sizeof *ns);
    size_t stride = total / live;
    size_t segments = 0, real = 0, kept = 0;
    for (int r = 0; r < reps; r++) {
        for (size_t i = 0; i < total; i++) {
            unsigned char *p = A.malloc(size);
            if (!p)
                die("allocation returned NULL");
            p[0] = 1;
            p[size - 1] = 1;
            blocks[i] = p;
        }
        kept = 0;
        for (size_t i = 0; i < total; i++) {
            if (i % stride == 0 && kept < live)
                kept++;
            else
                A.free(blocks[i]);
        }
        real = A.usage(true);
        if (stats) {
            zendmm_stats_t st;
            memset(&st, 0, sizeof st);
            st.size = sizeof st;
            if (stats(NULL, &st))
                segments = st.segments;
        }
        uint64_t t0 = now_ns();
        A.shutdown(true, false);
        ns[r] = now_ns() - t0;
    }
    qsort(ns, (size_t)reps, sizeof *ns, cmp_u64);
    printf("RESULT mode=shutdown alloc=%s live=%zu total=%zu size=%zu reps=%d median_ns=%llu min_ns=%llu "
           "max_ns=%llu real_usage=%zu segments=%zu\n",
           A.name, kept, total, size, reps, (unsigned long long)ns[reps / 2], (unsigned long long)ns[0],
           (unsigned long long)ns[reps - 1], real, segments);
    return 0;
}

/* ------------------------------------------------------------------------
 * Scale: the same seeded mix over a small and a big live heap
 * ---------------------------------------------------------------------- */

static uint64_t g_rng;
static inline uint64_t rnd(void)
{
    /* splitmix64 */
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Long-lived data: 70% <= 256 B, 20% <= 3 KiB, 9% <= 64 KiB, 1% <= 1 MiB. */
static size_t draw_old_size(void)
{
    uint64_t u = rnd() % 1000, r = rnd();
    if (u < 700)
        return 8 + r % 249;
    if (u < 900)
        return 257 + r % (3072 - 256);
    if (u < 990)
        return 3073 + r % (65536 - 3072);
    return 65537 + r % (1048576 - 65536);
}

/* Temporaries: 70% <= 256 B, 25% <= 3 KiB, 5% <= 64 KiB. */
static size_t draw_young_size(void)
{
    uint64_t u = rnd() % 100, r = rnd();
    if (u < 70)
        return 8 + r % 249;
    if (u < 95)
        return 257 + r % (3072 - 256);
    return 3073 + r % (65536 - 3072);
}

typedef struct {
    unsigned char *p;
    size_t size;
} slot;

static inline unsigned char tagof(size_t size)
{
    return (unsigned char)(size | 1);
}

static inline unsigned char *s_alloc(size_t size)
{
    unsigned char *p = A.malloc(size);
    if (!p)
        die("allocation of %zu returned NULL", size);
    p[0] = tagof(size);
    p[size - 1] = tagof(size);
    return p;
}

static inline void s_realloc(slot *s, size_t size)
{
    unsigned char *p = A.realloc(s->p, size);
    if (!p)
        die("realloc to %zu returned NULL", size);
    if (p[0] != tagof(s->size))
        die("realloc lost the first byte");
    p[0] = tagof(size);
    p[size - 1] = tagof(size);
    s->p = p;
    s->size = size;
}

/* Where the temporaries land: the addresses of the last SPREAD_N of them,
 * counted afterwards by distinct 4 KiB page and 2 MiB region. A heap that
 * scatters them over more memory pays more cache and TLB misses. */
enum { SPREAD_N = 1 << 15 };
static uintptr_t g_spread[SPREAD_N];
static size_t g_nspread;

static int cmp_uintptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* Distinct values of the recorded addresses shifted right by `shift`. */
static size_t spread_count(int shift)
{
    static uintptr_t keys[SPREAD_N];
    size_t n = g_nspread < SPREAD_N ? g_nspread : SPREAD_N, d = 0;
    for (size_t i = 0; i < n; i++)
        keys[i] = g_spread[i] >> shift;
    qsort(keys, n, sizeof *keys, cmp_uintptr);
    for (size_t i = 0; i < n; i++)
        d += i == 0 || keys[i] != keys[i - 1];
    return d;
}

static int mode_scale(size_t live_mib, size_t ops, uint64_t seed)
{
    g_rng = seed;
    const size_t target = live_mib << 20;
    const size_t young_n = 4096;

    /* Build: 1.25x the target, every page written, then a random 20% freed
     * so the heap has holes. Not timed. */
    size_t cap = 1 << 16, n = 0, bytes = 0;
    slot *old = map_anon(cap * sizeof *old);
    while (bytes < target + target / 4) {
        if (n == cap) {
            old = remap_anon(old, cap * sizeof *old, 2 * cap * sizeof *old);
            cap *= 2;
        }
        size_t sz = draw_old_size();
        unsigned char *p = A.malloc(sz);
        if (!p)
            die("allocation of %zu returned NULL", sz);
        for (size_t i = 0; i < sz; i += 4096)
            p[i] = 0x5a;
        p[0] = tagof(sz);
        p[sz - 1] = tagof(sz);
        old[n++] = (slot){p, sz};
        bytes += sz;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (rnd() % 5 == 0) {
            A.free(old[i].p);
            bytes -= old[i].size;
        } else {
            old[m++] = old[i];
        }
    }
    n = m;
    slot *young = map_anon(young_n * sizeof *young);
    pretouch(young, young_n * sizeof *young);
    pretouch(old, n * sizeof *old);
    pretouch(g_spread, sizeof g_spread);

    /* Timed: 95% of steps work on temporaries (alloc into an empty slot;
     * else realloc 1 in 4, free 3 in 4); 5% replace a random long-lived
     * block (free it, allocate a fresh size). */
    size_t calls = 0;
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    perf_control("enable");
    uint64_t t0 = now_ns();
    while (calls < ops) {
        uint64_t u = rnd();
        if (u % 20 != 0) {
            slot *s = &young[(u >> 8) % young_n];
            if (!s->p) {
                size_t sz = draw_young_size();
                s->p = s_alloc(sz);
                s->size = sz;
                g_spread[g_nspread++ & (SPREAD_N - 1)] = (uintptr_t)s->p;
            } else if ((u >> 40) % 4 == 0) {
                s_realloc(s, draw_young_size());
            } else {
                A.free(s->p);
                s->p = NULL;
            }
            calls++;
        } else {
            slot *s = &old[(u >> 8) % n];
            size_t sz = draw_old_size();
            bytes += sz - s->size;
            A.free(s->p);
            s->p = s_alloc(sz);
            s->size = sz;
            calls += 2;
        }
    }
    uint64_t ns = now_ns() - t0;
    perf_control("disable");
    getrusage(RUSAGE_SELF, &ru1);
    size_t own = own_peak_now();
    printf("RESULT mode=scale alloc=%s live_mib=%zu live_bytes=%zu old_blocks=%zu ops=%zu ns=%llu "
           "ns_per_op=%.3f minflt=%ld own_peak=%zu seed=%llu young_sampled=%zu young_pages=%zu "
           "young_regions=%zu max_rss_kib=%ld\n",
           A.name, live_mib, bytes, n, calls, (unsigned long long)ns, (double)ns / (double)calls,
           ru1.ru_minflt - ru0.ru_minflt, own, (unsigned long long)seed,
           g_nspread < SPREAD_N ? g_nspread : (size_t)SPREAD_N, spread_count(12), spread_count(21),
           ru1.ru_maxrss);
    return 0;
}

/* ------------------------------------------------------------------------ */

static void usage(void)
{
    fputs("usage: replay [--breakdown] [--slow NS] ALLOC TRACE\n"
          "       replay --shutdown ALLOC LIVE TOTAL SIZE REPS\n"
          "       replay --scale ALLOC LIVE_MIB OPS SEED\n"
          "ALLOC: zendmm php glibc jemalloc mimalloc tcmalloc\n",
          stderr);
    exit(2);
}

static size_t num_arg(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end || end == s)
        usage();
    return (size_t)v;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "--shutdown")) {
        if (argc != 7)
            usage();
        load_allocator(argv[2], argv);
        return mode_shutdown(num_arg(argv[3]), num_arg(argv[4]), num_arg(argv[5]), (int)num_arg(argv[6]));
    }
    if (argc >= 2 && !strcmp(argv[1], "--scale")) {
        if (argc != 6)
            usage();
        load_allocator(argv[2], argv);
        return mode_scale(num_arg(argv[3]), num_arg(argv[4]), num_arg(argv[5]));
    }
    int a = 1;
    bool breakdown = false;
    double slow_ns = 0;
    for (; a < argc && !strncmp(argv[a], "--", 2); a++) {
        if (!strcmp(argv[a], "--slow") && a + 1 < argc) {
            slow_ns = (double)num_arg(argv[++a]);
            if (slow_ns == 0)
                usage();
        } else if (strcmp(argv[a], "--breakdown")) {
            usage();
        }
        breakdown = true;
    }
    if (argc != a + 2)
        usage();
    load_allocator(argv[a], argv);
    return mode_trace(argv[a + 1], breakdown, slow_ns);
}
