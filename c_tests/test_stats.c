/*
 * test_stats.c - zendmm_stats() and its versioned struct, the per-request
 * records of ZENDMM_STATS and the cache table of ZENDMM_CACHE_STAT.
 * Cases that need the environment run in forked children; this process
 * only uses heaps of its own (zend_mm_startup), never the process heap.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "zendmm_alloc.h"
#include "test_helper.h"

static size_t true_size(size_t n) { return n < 24 ? 32 : (n + 8 + 15) & ~(size_t)15; }

static char log_path[128];

static void fresh_log(const char *what)
{
	snprintf(log_path, sizeof log_path, "/tmp/zendmm_test_stats_%s_%ld.log", what, (long)getpid());
	unlink(log_path);
}

/* The whole file, NUL-terminated (empty when missing). */
static const char *slurp(const char *path)
{
	static char buf[65536];
	size_t n = 0;
	FILE *f = fopen(path, "r");

	if (f != NULL) {
		n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

static int count_lines(const char *text)
{
	int n = 0;
	for (; *text != '\0'; text++)
		n += *text == '\n';
	return n;
}

/* Line `i` (from 0) of text, without its newline. */
static const char *line_at(const char *text, int i)
{
	static char line[1024];
	size_t n;

	while (i-- > 0 && text != NULL) {
		text = strchr(text, '\n');
		if (text != NULL)
			text++;
	}
	if (text == NULL)
		return "";
	n = strcspn(text, "\n");
	if (n >= sizeof line)
		n = sizeof line - 1;
	memcpy(line, text, n);
	line[n] = '\0';
	return line;
}

/* The value of ` key=` in a record line (UINTMAX_MAX when missing). */
static uintmax_t field(const char *line, const char *key)
{
	char pat[64];
	const char *at;

	snprintf(pat, sizeof pat, "%s=", key);
	for (at = strstr(line, pat); at != NULL; at = strstr(at + 1, pat))
		if (at == line || at[-1] == ' ')
			return strtoumax(at + strlen(pat), NULL, 10);
	return UINTMAX_MAX;
}

/* ---- the struct --------------------------------------------------------- */

static void test_struct_is_versioned(void)
{
	zend_mm_heap *h = zend_mm_startup();
	zendmm_heap_stats st;

	CHECK_EQ(offsetof(zendmm_heap_stats, size), 0);
	CHECK_EQ(offsetof(zendmm_heap_stats, version), sizeof(size_t));
	CHECK_EQ(ZENDMM_STATS_VERSION, 2);
	st = th_stats(h);
	CHECK_EQ(st.size, sizeof st);
	CHECK_EQ(st.version, ZENDMM_STATS_VERSION);
	CHECK_EQ(st.requests, 0);
	CHECK_EQ(st.segments, 1);
	CHECK_EQ(st.real_usage, 262144);
	zend_mm_shutdown(h, true, true);
}

static void test_older_callers_get_the_fields_that_fit(void)
{
	zend_mm_heap *h = zend_mm_startup();
	zendmm_heap_stats full = th_stats(h);
	unsigned char buf[sizeof(zendmm_heap_stats) + 64], pattern[sizeof buf];
	zendmm_heap_stats *st = (zendmm_heap_stats *)(void *)buf;
	size_t v1 = offsetof(zendmm_heap_stats, requests);

	memset(pattern, 0xab, sizeof pattern);

	/* A version-1 caller: everything up to cache_misses, requests untouched. */
	memset(buf, 0xab, sizeof buf);
	st->size = v1;
	CHECK(zendmm_stats(h, st));
	CHECK_EQ(st->size, v1);
	CHECK_EQ(st->version, ZENDMM_STATS_VERSION);
	CHECK_EQ(st->usage, full.usage);
	CHECK_EQ(st->real_usage, full.real_usage);
	CHECK_EQ(st->cache_misses, full.cache_misses);
	CHECK(memcmp(buf + v1, pattern, sizeof buf - v1) == 0);

	/* A size that ends inside a field: only whole fields. */
	memset(buf, 0xab, sizeof buf);
	st->size = offsetof(zendmm_heap_stats, peak) + 5;
	CHECK(zendmm_stats(h, st));
	CHECK_EQ(st->size, offsetof(zendmm_heap_stats, peak));
	CHECK_EQ(st->usage, full.usage);
	CHECK(memcmp(buf + offsetof(zendmm_heap_stats, peak), pattern,
	             sizeof buf - offsetof(zendmm_heap_stats, peak)) == 0);

	/* A larger struct (a newer caller): ours is filled, the rest untouched. */
	memset(buf, 0xab, sizeof buf);
	st->size = sizeof buf;
	CHECK(zendmm_stats(h, st));
	CHECK_EQ(st->size, sizeof(zendmm_heap_stats));
	CHECK(memcmp(buf + sizeof(zendmm_heap_stats), pattern, 64) == 0);

	/* Too small to hold even the version: refused, nothing written. */
	memset(buf, 0xab, sizeof buf);
	st->size = offsetof(zendmm_heap_stats, usage) - 1;
	CHECK(!zendmm_stats(h, st));
	CHECK_EQ(st->size, offsetof(zendmm_heap_stats, usage) - 1);
	CHECK(memcmp(buf + sizeof(size_t), pattern, sizeof buf - sizeof(size_t)) == 0);
	CHECK(!zendmm_stats(h, NULL));
	zend_mm_shutdown(h, true, true);
}

static void test_counters_follow_allocations(void)
{
	zend_mm_heap *h = zend_mm_startup();
	zendmm_heap_stats s0, s1, s2;
	void *p, *a, *b, *c;

	s0 = th_stats(h);
	p = _zend_mm_alloc(h, 100);
	s1 = th_stats(h);
	CHECK_EQ(s1.cache_misses, s0.cache_misses + 1);
	CHECK_EQ(s1.cache_hits, s0.cache_hits);
	CHECK_EQ(s1.usage, s0.usage + true_size(100));
	CHECK_EQ(s1.peak, s1.usage);

	_zend_mm_free(h, p);
	s2 = th_stats(h);
	CHECK_EQ(s2.cached_bytes, s1.cached_bytes + true_size(100));
	CHECK_EQ(s2.cached_blocks, s1.cached_blocks + 1);
	CHECK_EQ(s2.usage, s0.usage);

	p = _zend_mm_alloc(h, 100);
	s2 = th_stats(h);
	CHECK_EQ(s2.cache_hits, s1.cache_hits + 1);
	CHECK_EQ(s2.cache_misses, s1.cache_misses);
	CHECK_EQ(s2.cached_bytes, s1.cached_bytes);
	_zend_mm_free(h, p);

	/* Small class: a block flushed from the cache between two used ones. */
	zend_mm_gc(h);
	a = _zend_mm_alloc(h, 300);
	b = _zend_mm_alloc(h, 300);
	c = _zend_mm_alloc(h, 300);
	s1 = th_stats(h);
	_zend_mm_free(h, b);
	zend_mm_gc(h);
	s2 = th_stats(h);
	CHECK_EQ(s2.cached_bytes, 0);
	CHECK_EQ(s2.free_small_blocks, s1.free_small_blocks + 1);
	CHECK_EQ(s2.free_small_bytes, s1.free_small_bytes + true_size(300));
	_zend_mm_free(h, a);
	_zend_mm_free(h, c);

	/* Rest class: the tail of a dedicated segment. */
	s1 = th_stats(h);
	p = _zend_mm_alloc(h, 300 << 10);
	s2 = th_stats(h);
	CHECK_EQ(s2.segments, s1.segments + 1);
	CHECK_EQ(s2.real_usage, s1.real_usage + 524288);
	CHECK_EQ(s2.free_rest_blocks, s1.free_rest_blocks + 1);
	CHECK(s2.free_rest_bytes > s1.free_rest_bytes + 200000);
	_zend_mm_free(h, p);
	s2 = th_stats(h);
	CHECK_EQ(s2.segments, s1.segments);
	CHECK_EQ(s2.free_rest_blocks, s1.free_rest_blocks);

	/* Large class: a big free block left by a request end is the whole segment. */
	zend_mm_shutdown(h, false, true);
	zend_mm_shutdown(h, false, true);
	s2 = th_stats(h);
	CHECK_EQ(s2.requests, 2);
	CHECK_EQ(s2.free_large_blocks + s2.free_small_blocks, 1);
	CHECK_EQ(s2.usage + s2.free_large_bytes + s2.free_small_bytes + 48, s2.real_usage);
	zend_mm_shutdown(h, true, true);
}

/* ---- ZENDMM_STATS ------------------------------------------------------- */

static int three_requests(void *arg)
{
	zendmm_heap_stats st;
	void *keep;

	(void)arg;
	shutdown_memory_manager(true, false);                /* request 1: nothing */
	keep = emalloc(100000);                              /* request 2: 100000 bytes live */
	memset(keep, 1, 100000);
	shutdown_memory_manager(true, false);
	for (int i = 0; i < 10; i++)                         /* request 3: 1 miss, 9 hits */
		efree(emalloc(50));
	shutdown_memory_manager(true, false);
	memset(&st, 0, sizeof st);
	st.size = sizeof st;
	STEP(zendmm_stats(NULL, &st));
	STEP(st.requests == 3);
	shutdown_memory_manager(true, true);                 /* not a request end */
	return 0;
}

static void test_stats_records_each_request_end(void)
{
	th_child res;
	const char *text, *l1, *l2;
	uintmax_t pid;
	th_env env[] = {{"ZENDMM_STATS", log_path}, {NULL, NULL}};

	fresh_log("records");
	th_run_child_env(&res, env, three_requests, NULL);
	CHECK_EXIT(&res, 0);
	CHECK_STDERR(&res, "");
	text = slurp(log_path);
	if (!CHECK_EQ(count_lines(text), 3))
		printf("      %s:\n%s", log_path, text);
	l1 = line_at(text, 0);
	pid = field(l1, "pid");
	CHECK(pid != 0 && pid != UINTMAX_MAX && pid != (uintmax_t)getpid());
	for (int i = 0; i < 3; i++) {
		const char *l = line_at(text, i);
		CHECK_EQ(field(l, "request"), i + 1);
		CHECK_EQ(field(l, "pid"), pid);
		CHECK_EQ(field(l, "heap"), 0);
		CHECK(field(l, "real_usage") >= 262144);
		CHECK(field(l, "real_peak") >= field(l, "real_usage"));
		CHECK(field(l, "peak") >= field(l, "usage"));
		CHECK(field(l, "segments") >= 1);
	}
	CHECK_EQ(field(l1, "usage"), 8208);                  /* the reserve alone */
	l2 = line_at(text, 1);
	CHECK_EQ(field(l2, "usage"), 8208 + true_size(100000));
	CHECK_EQ(field(l2, "peak"), 8208 + true_size(100000));
	CHECK_EQ(field(l2, "misses"), 0);                    /* 100000 is not small */
	CHECK_EQ(field(line_at(text, 2), "hits"), 9);
	CHECK_EQ(field(line_at(text, 2), "misses"), 1);
	CHECK_EQ(field(line_at(text, 2), "cached"), true_size(50));
	unlink(log_path);
}

static int started(void *arg)
{
	(void)arg;
	fprintf(stderr, "start_memory_manager() returned\n");
	return 0;
}

static void bad_value(const char *name, const char *value, const char *first_line)
{
	th_child res;
	th_env env[] = {{name, value}, {NULL, NULL}};

	th_run_child_env(&res, env, started, NULL);
	CHECK_EXIT(&res, 255);
	if (!CHECK_PREFIX(th_first_line(&res), first_line))
		th_describe(&res);
}

static void test_bad_values_are_named(void)
{
	bad_value("ZENDMM_STATS", "", "ZENDMM_STATS must be a file path or 'stderr', got ''");
	bad_value("ZENDMM_STATS", "/nonexistent/dir/stats.log",
	          "ZENDMM_STATS: cannot open '/nonexistent/dir/stats.log' for appending: "
	          "No such file or directory");
	bad_value("ZENDMM_CACHE_STAT", "", "ZENDMM_CACHE_STAT must be a file path or 'stderr', got ''");
	bad_value("ZENDMM_CACHE_STAT", "/", "ZENDMM_CACHE_STAT: cannot open '/' for appending: Is a directory");
}

/* ---- ZENDMM_CACHE_STAT -------------------------------------------------- */

enum { END_FULL_SHUTDOWN, END_EXIT };

/* 5 misses, 5 pushes, 3 hits in bucket 5 (requests 89..104, blocks of 112). */
static int known_cache_traffic(void *arg)
{
	void *p[5];
	zendmm_heap_stats st;

	for (int i = 0; i < 5; i++)
		p[i] = emalloc(100);
	for (int i = 0; i < 5; i++)
		efree(p[i]);
	for (int i = 0; i < 3; i++)
		p[i] = emalloc(100);
	memset(&st, 0, sizeof st);
	st.size = sizeof st;
	STEP(zendmm_stats(NULL, &st));
	STEP(st.cache_hits == 3);
	if (*(const int *)arg == END_EXIT)
		exit(0); /* no full shutdown: the table is written at exit */
	shutdown_memory_manager(true, true);
	return 0;
}

static void check_table(const char *text, const char *where)
{
	if (!CHECK_PREFIX(line_at(text, 0), "zendmm cache statistics, pid ") ||
	    !CHECK_EQ(count_lines(text), 2 + 64 + 2)) {
		printf("      %s:\n%s", where, text);
		return;
	}
	CHECK(strstr(line_at(text, 0), ", heap 0") != NULL);
	CHECK_STR_EQ(line_at(text, 1), "idx min_size max_size true_size  max_len     hits   misses");
	CHECK_STR_EQ(line_at(text, 2), " 0        0       24        32        0        0        0");
	CHECK_STR_EQ(line_at(text, 2 + 5), " 5       89      104       112        5        3        5");
	CHECK_STR_EQ(line_at(text, 2 + 63), "63     1017     1032      1040        0        0        0");
	CHECK_STR_EQ(line_at(text, 2 + 64), "           3        5");
}

static void test_cache_table_at_full_shutdown(void)
{
	SKIP_UNDER_TOOLS("under a tool every call takes the tooled route, which does not count the fastcache");
	th_child res;
	int how = END_FULL_SHUTDOWN;
	th_env env[] = {{"ZENDMM_CACHE_STAT", log_path}, {NULL, NULL}};

	fresh_log("cache");
	th_run_child_env(&res, env, known_cache_traffic, &how);
	CHECK_EXIT(&res, 0);
	CHECK_STDERR(&res, "");
	check_table(slurp(log_path), log_path);
	unlink(log_path);
}

static void test_cache_table_at_exit(void)
{
	SKIP_UNDER_TOOLS("under a tool every call takes the tooled route, which does not count the fastcache");
	th_child res;
	int how = END_EXIT;
	th_env env[] = {{"ZENDMM_CACHE_STAT", "stderr"}, {NULL, NULL}};

	th_run_child_env(&res, env, known_cache_traffic, &how);
	CHECK_EXIT(&res, 0);
	check_table(res.err, "stderr");
}

/* A random mix with the counters on: the heap stays sound and the table
 * agrees with zendmm_stats(). Prints the expected totals to stderr. */
static int random_traffic(void *arg)
{
	enum { SLOTS = 256, OPS = 40000 };
	static unsigned char *slot[SLOTS];
	static size_t len[SLOTS];
	uint64_t x = 0x9e3779b97f4a7c15u;
	zendmm_heap_stats st;

	(void)arg;
	for (int op = 0; op < OPS; op++) {
		int i;
		size_t n;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		i = (int)(x % SLOTS);
		n = (x >> 20) % 8 == 0 ? (size_t)((x >> 24) % 20000) : (size_t)((x >> 24) % 600);
		if (slot[i] == NULL) {
			slot[i] = emalloc(n);
			len[i] = n;
			memset(slot[i], i, n);
		} else if ((x >> 40) % 3 == 0) {
			for (size_t k = 0; k < len[i] && k < n; k++)
				STEP(slot[i][k] == (unsigned char)i);
			slot[i] = erealloc(slot[i], n);
			len[i] = n;
			memset(slot[i], i, n);
		} else {
			for (size_t k = 0; k < len[i]; k++)
				STEP(slot[i][k] == (unsigned char)i);
			efree(slot[i]);
			slot[i] = NULL;
		}
		if (op == OPS / 3)
			zend_mm_gc(NULL);
		if (op == OPS / 2) {
			shutdown_memory_manager(true, false);
			memset(slot, 0, sizeof slot);
		}
	}
	STEP(zendmm_check_heap(NULL) == 0);
	memset(&st, 0, sizeof st);
	st.size = sizeof st;
	STEP(zendmm_stats(NULL, &st));
	fprintf(stderr, "%8ju\n", (uintmax_t)st.cache_hits);
	shutdown_memory_manager(true, true);
	return 0;
}

static void test_counting_keeps_the_heap_sound(void)
{
	SKIP_UNDER_TOOLS("under a tool every call takes the tooled route, which does not count the fastcache");
	th_child res;
	const char *text;
	char hits[32];
	int rows;
	th_env env[] = {{"ZENDMM_CACHE_STAT", log_path}, {NULL, NULL}};

	fresh_log("random");
	th_run_child_env(&res, env, random_traffic, NULL);
	CHECK_EXIT(&res, 0);
	text = slurp(log_path);
	/* PHP's 64 rows, then the larger cached sizes up to the last used
	 * (4112 bytes at most: 256 rows in all). */
	rows = count_lines(text) - 4;
	CHECK(rows > 64 && rows <= 256);
	/* The totals line starts with the same hit count zendmm_stats() gave. */
	snprintf(hits, sizeof hits, "    %s", th_first_line(&res));
	if (!CHECK_PREFIX(line_at(text, 2 + rows), hits))
		th_describe(&res);
	CHECK(strtoumax(th_first_line(&res), NULL, 10) > 1000);
	unlink(log_path);
}

/* A heap of its own gets its number in the table's first line; the
 * process heap is 0. */
static int own_heap_traffic(void *arg)
{
	zend_mm_heap *h = zend_mm_startup();

	(void)arg;
	_zend_mm_free(h, _zend_mm_alloc(h, 10));
	_zend_mm_free(h, _zend_mm_alloc(h, 10));
	zend_mm_shutdown(h, true, true);
	return 0;
}

static void test_own_heaps_are_numbered(void)
{
	SKIP_UNDER_TOOLS("under a tool every call takes the tooled route, which does not count the fastcache");
	th_child res;
	const char *text;
	th_env env[] = {{"ZENDMM_CACHE_STAT", log_path}, {NULL, NULL}};

	fresh_log("own");
	th_run_child_env(&res, env, own_heap_traffic, NULL);
	CHECK_EXIT(&res, 0);
	text = slurp(log_path);
	/* Numbered from 1 in zend_mm_startup order (this process made some
	 * before the fork, so the child's is not the first). */
	CHECK(strstr(line_at(text, 0), ", heap ") != NULL &&
	      strtoumax(strstr(line_at(text, 0), ", heap ") + 7, NULL, 10) >= 1);
	CHECK_STR_EQ(line_at(text, 2), " 0        0       24        32        1        1        1");
	unlink(log_path);
}

int main(void)
{
	RUN(test_struct_is_versioned);
	RUN(test_older_callers_get_the_fields_that_fit);
	RUN(test_counters_follow_allocations);
	RUN(test_stats_records_each_request_end);
	RUN(test_bad_values_are_named);
	RUN(test_cache_table_at_full_shutdown);
	RUN(test_cache_table_at_exit);
	RUN(test_counting_keeps_the_heap_sound);
	RUN(test_own_heaps_are_numbered);
	return th_report("test_stats");
}
