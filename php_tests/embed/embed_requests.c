/*
 * Runs several PHP requests in one embed-SAPI process (libphp8.2.so) and
 * checks that zend_memory_usage() returns to its baseline after each one.
 *
 *   embed_requests --expect-zendmm DIR   (run with LD_PRELOAD=libzendmm.so)
 *   embed_requests --expect-stock DIR    (no preload: PHP's own ZendMM)
 *
 * DIR holds request.php. With --expect-zendmm the program also proves that
 * zendmm is the allocator: zendmm_stats() resolves and sees the requests'
 * allocations, and real usage (segments held) returns to its baseline too. Prints "embed: N checks, M failed" and exits 1 on failure.
 */
#include <sapi/embed/php_embed.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

/* zendmm_heap_stats of include/zendmm.h (version 1), copied: that header
 * cannot be included next to PHP's (zend_result, _emalloc & co.). */
typedef struct {
    size_t size;
    uint32_t version;
    size_t usage, peak, real_usage, real_peak, limit, segments;
    size_t rest[8];  /* cached_bytes .. free_rest_blocks */
    uint64_t hits, misses;
} zmm_stats;
typedef bool (*zmm_stats_fn)(const void *heap, zmm_stats *out);

static int checks, failures;
static zmm_stats_fn zendmm_stats_fn;

static void check(int ok, const char *what, long a, long b)
{
    checks++;
    if (!ok) {
        failures++;
        printf("embed: FAIL %s (%ld vs %ld)\n", what, a, b);
    }
}

static size_t zmm_usage(int real)
{
    zmm_stats st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    if (!zendmm_stats_fn || !zendmm_stats_fn(NULL, &st)) {
        return (size_t)-1;
    }
    return real ? st.real_usage : st.usage;
}

/* Each kind of request the loop cycles through. */
static const char *const evals[] = {
    /* 0: php_execute_script(request.php) */
    NULL,
    /* 1: plain allocations left for the request end */
    "$GLOBALS['s'] = str_repeat('x', 20 << 20);"
    "$GLOBALS['o'] = []; for ($i = 0; $i < 50000; $i++) { $GLOBALS['o'][] = new ArrayObject([$i, \"v$i\"]); }"
    "echo 'eval: ', strlen($GLOBALS['s']), ' ', count($GLOBALS['o']), \"\\n\";",
    /* 2: memory_limit exhausted in a loop: fatal error, bailout */
    "ini_set('memory_limit', '32M'); echo \"eval: growing\\n\";"
    "$a = []; while (true) { $a[] = str_repeat('m', 5000); }",
    /* 3: an uncaught exception: fatal error, bailout */
    "$keep = str_repeat('k', 4 << 20); throw new RuntimeException('embed uncaught');",
    /* 4: exit() in the middle of a request */
    "$keep = range(1, 100000); echo \"eval: exiting\\n\"; exit(7);",
};
#define KINDS (sizeof evals / sizeof evals[0])
#define REQUESTS 12

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "--expect-zendmm") && strcmp(argv[1], "--expect-stock"))) {
        fprintf(stderr, "usage: %s --expect-zendmm|--expect-stock DIR\n", argv[0]);
        return 2;
    }
    int expect_zendmm = strcmp(argv[1], "--expect-zendmm") == 0;
    char script[4096];
    snprintf(script, sizeof script, "%s/request.php", argv[2]);
    setvbuf(stdout, NULL, _IONBF, 0);

    zendmm_stats_fn = (zmm_stats_fn)dlsym(RTLD_DEFAULT, "zendmm_stats");
    if (expect_zendmm) {
        check(zendmm_stats_fn != NULL, "zendmm_stats resolves (libzendmm.so preloaded)", 0, 0);
    } else {
        check(zendmm_stats_fn == NULL, "zendmm_stats absent without the preload", 0, 0);
    }

    char *args[] = {argv[0], NULL};
    if (php_embed_init(1, args) != SUCCESS) {
        printf("embed: php_embed_init failed\n");
        return 1;
    }
    /* The request php_embed_init started is ended at once: the baseline is
     * the usage between requests. */
    php_request_shutdown(NULL);
    size_t base = zend_memory_usage(0), base_real = zend_memory_usage(1);
    size_t start0 = 0, start0_real = 0;
    printf("embed: zendmm %s\n", zendmm_stats_fn ? "loaded" : "not loaded");

    for (int r = 0; r < REQUESTS; r++) {
        unsigned kind = (unsigned)r % KINDS;
        if (php_request_startup() != SUCCESS) {
            printf("embed: php_request_startup failed in request %d\n", r);
            return 1;
        }
        size_t start = zend_memory_usage(0), start_real = zend_memory_usage(1);
        size_t zstart = zmm_usage(0);
        if (r == 0) {
            start0 = start;
            start0_real = start_real;
        }
        volatile int bailed_out = 0;
        EG(exit_status) = 0;
        zend_first_try {
            if (evals[kind] == NULL) {
                zend_file_handle fh;
                zend_stream_init_filename(&fh, script);
                php_execute_script(&fh);
                zend_destroy_file_handle(&fh);
            } else {
                zend_eval_string_ex((char *)evals[kind], NULL, "embed eval", 1);
            }
        } zend_catch {
            bailed_out = 1;
        } zend_end_try();
        size_t mid = zend_memory_usage(0);
        int status = EG(exit_status);
        if (kind != 2) {
            check(mid >= start + (4u << 20) || kind == 4, "the request's allocations are in zend_memory_usage", (long)mid, (long)start);
        }
        if (zendmm_stats_fn && kind != 2 && kind != 4) {
            size_t zmid = zmm_usage(0);
            check(zmid != (size_t)-1 && zmid >= zstart + (4u << 20), "zendmm_stats sees the request's allocations", (long)zmid, (long)zstart);
            check(zmid == mid, "zendmm_stats usage == zend_memory_usage(0)", (long)zmid, (long)mid);
            check(zmm_usage(1) % 262144 == 0, "real usage is a multiple of 256 KiB", (long)zmm_usage(1), 262144);
        }
        php_request_shutdown(NULL);
        size_t end = zend_memory_usage(0), end_real = zend_memory_usage(1);
        printf("embed: request %d kind %u exit_status %d bailout %d\n", r, kind, status, bailed_out);
        check(end == base, "usage back to the baseline after the request", (long)end, (long)base);
        check(start == start0, "usage at request start is the same every time", (long)start, (long)start0);
        if (expect_zendmm) {
            /* zendmm releases every segment at the request end; PHP's ZendMM
             * keeps a varying number of cached 2 MiB chunks in real usage. */
            check(end_real == base_real, "real usage back to the baseline after the request", (long)end_real, (long)base_real);
            check(start_real == start0_real, "real usage at request start is the same every time", (long)start_real, (long)start0_real);
        }
        switch (kind) {
        case 2: check(status == 255, "memory_limit fatal error: exit status 255", status, 255); break;
        case 3: check(status == 255, "uncaught exception: exit status 255", status, 255); break;
        case 4: check(status == 7, "exit(7): exit status 7", status, 7); break;
        default: check(status == 0, "exit status 0", status, 0); break;
        }
        if (zendmm_stats_fn) {
            check(zmm_usage(0) == end, "zendmm_stats usage == zend_memory_usage(0) between requests", (long)zmm_usage(0), (long)end);
        }
    }

    php_request_startup();   /* php_embed_shutdown ends a request first */
    php_embed_shutdown();
    printf("embed: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
