/*
 * test_api.c - the request-memory API contract: zero sizes, NULL, calloc
 * zeroing, realloc keeping contents, strings, safe_*, persistent memory,
 * heap objects, statistics and a seeded random walk checked by
 * zendmm_check_heap().
 */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zendmm_alloc.h"
#include "test_helper.h"

#define SEG 262144u
#define RESERVE_TRUE_SIZE 8208u

/* True size of a request block: round_up(n + 8, 16), at least 32. */
static size_t true_size(size_t n)
{
	size_t t = (n + 8 + 15) & ~(size_t)15;
	return t < 32 ? 32 : t;
}

static uint64_t rng_state = 0x5eed5eedu;

static uint64_t rng(void) /* splitmix64 */
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static void fill(void *p, size_t n, unsigned seed)
{
	unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(seed + i * 31 + (i >> 8));
}

/* Number of bytes that do not match fill(p, n, seed). */
static size_t mismatches(const void *p, size_t n, unsigned seed)
{
	const unsigned char *b = p;
	size_t bad = 0;
	for (size_t i = 0; i < n; i++)
		bad += b[i] != (unsigned char)(seed + i * 31 + (i >> 8));
	return bad;
}

static size_t nonzero(const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t bad = 0;
	for (size_t i = 0; i < n; i++)
		bad += b[i] != 0;
	return bad;
}

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

static size_t heap_usage(zend_mm_heap *h) { return th_stats(h).usage; }
static size_t heap_real(zend_mm_heap *h) { return th_stats(h).real_usage; }

/* ------------------------------------------------------------------------ */

static void test_baseline(void)
{
	CHECK(is_zend_mm());
	CHECK_EQ(zend_memory_usage(false), RESERVE_TRUE_SIZE);
	CHECK_EQ(zend_memory_usage(true), SEG);
	CHECK(zend_mm_get_heap() != NULL);
	CHECK_EQ(zendmm_check_heap(NULL), 0);
}

static void test_zero_and_null(void)
{
	size_t before = zend_memory_usage(false);
	void *a = emalloc(0);
	void *b = emalloc(0);
	void *c;

	CHECK(a != NULL);
	CHECK(b != NULL);
	CHECK(a != b);
	CHECK(zend_memory_usage(false) > before);
	efree(a);
	efree(b);
	CHECK_EQ(zend_memory_usage(false), before);

	efree(NULL);
	(pefree)(NULL, false);
	CHECK_EQ(zend_memory_usage(false), before);

	c = erealloc(NULL, 40);
	CHECK(c != NULL);
	CHECK(zend_mem_block_size(c) >= 40);
	memset(c, 0x11, 40);
	efree(c);

	a = ecalloc(0, 16);
	b = ecalloc(16, 0);
	CHECK(a != NULL && b != NULL && a != b);
	efree(a);
	efree(b);
	a = safe_emalloc(0, 100, 0);
	CHECK(a != NULL);
	efree(a);
	CHECK_EQ(zend_memory_usage(false), before);
	CHECK_EQ(zendmm_check_heap(NULL), 0);
}

static void test_alignment_and_block_size(void)
{
	static const size_t big[] = {
		2000, 4095, 4096, 65536, 100000, 200000, 262000, 262144, 300000, 1u << 20, 5000000,
	};
	size_t before = zend_memory_usage(false);
	size_t misaligned = 0, too_small = 0;

	for (size_t n = 0; n <= 1100; n++) {
		char *p = emalloc(n);
		size_t bs = zend_mem_block_size(p);
		misaligned += ((uintptr_t)p & 15) != 0;
		too_small += bs < n;
		memset(p, 0xee, bs); /* all of the usable size is ours */
		efree(p);
	}
	for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
		char *p = emalloc(big[i]);
		size_t bs = zend_mem_block_size(p);
		misaligned += ((uintptr_t)p & 15) != 0;
		too_small += bs < big[i];
		memset(p, 0xee, bs);
		efree(p);
	}
	CHECK_EQ(misaligned, 0);
	CHECK_EQ(too_small, 0);
	CHECK_EQ(zend_memory_usage(false), before);
	CHECK_EQ(zendmm_check_heap(NULL), 0);
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
	return x < y ? -1 : x > y;
}

static void test_distinct_blocks(void)
{
	enum { N = 2000 };
	static void *p[N];
	static void *sorted[N];
	static size_t n[N];
	size_t before = zend_memory_usage(false), bad = 0, overlaps = 0, expect = 0;

	for (int i = 0; i < N; i++) {
		n[i] = (size_t)(rng() % 3000);
		if (i % 97 == 0)
			n[i] = 50000 + (size_t)(rng() % 300000);
		p[i] = emalloc(n[i]);
		fill(p[i], n[i], (unsigned)i);
		expect += true_size(n[i]);
	}
	/* Accounting: each live block counts at least its true size and at most
	 * its usable size plus the header. */
	CHECK(zend_memory_usage(false) >= before + expect);
	for (int i = 0; i < N; i++) {
		bad += mismatches(p[i], n[i], (unsigned)i);
		sorted[i] = p[i];
	}
	CHECK_EQ(bad, 0);
	qsort(sorted, N, sizeof sorted[0], cmp_ptr);
	for (int i = 0; i + 1 < N; i++)
		overlaps += (uintptr_t)sorted[i] + zend_mem_block_size(sorted[i]) > (uintptr_t)sorted[i + 1];
	CHECK_EQ(overlaps, 0);
	{
		size_t upper = before;
		for (int i = 0; i < N; i++)
			upper += zend_mem_block_size(p[i]) + 16;
		CHECK(zend_memory_usage(false) <= upper);
	}
	CHECK_EQ(zendmm_check_heap(NULL), 0);
	for (int i = 0; i < N; i++)
		efree(p[i]);
	CHECK_EQ(zend_memory_usage(false), before);
	CHECK_EQ(zendmm_check_heap(NULL), 0);
}

static void test_calloc_zeroes(void)
{
	static const size_t sizes[] = {1, 16, 100, 520, 521, 1000, 4000, 100000, 262144, 1u << 20, 3u << 20};
	size_t before = zend_memory_usage(false);

	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t n = sizes[i];
		unsigned char *p = emalloc(n);
		memset(p, 0xaa, zend_mem_block_size(p)); /* dirty the block calloc may get back */
		efree(p);
		p = ecalloc(1, n);
		CHECK_EQ(nonzero(p, n), 0);
		memset(p, 0xaa, n);
		efree(p);
		p = ecalloc(n, 1);
		CHECK_EQ(nonzero(p, n), 0);
		efree(p);
		if (n % 8 == 0) {
			p = ecalloc(n / 8, 8);
			CHECK_EQ(nonzero(p, n), 0);
			efree(p);
		}
	}
	CHECK_EQ(zend_memory_usage(false), before);
	CHECK_EQ(zendmm_check_heap(NULL), 0);
}

static void test_realloc_keeps_contents(void)
{
	/* small (<= 520), large, and dedicated-segment (> ~256 KiB) sizes */
	static const size_t sizes[] = {
		1, 7, 24, 100, 519, 520, 521, 1000, 4096, 30000, 131072, 261000, 300000, 1u << 20, 8u << 20,
	};
	enum { NS = sizeof sizes / sizeof sizes[0] };
	size_t before = zend_memory_usage(false), bad = 0, small = 0;

	for (int a = 0; a < NS; a++) {
		for (int b = 0; b < NS; b++) {
			unsigned seed = (unsigned)(a * NS + b);
			char *p = emalloc(sizes[a]);
			char *keep = emalloc(64); /* a neighbour, so growth cannot always be in place */
			fill(p, sizes[a], seed);
			fill(keep, 64, 999);
			p = erealloc(p, sizes[b]);
			bad += mismatches(p, min_sz(sizes[a], sizes[b]), seed);
			bad += mismatches(keep, 64, 999);
			small += zend_mem_block_size(p) < sizes[b];
			memset(p, 0x5a, sizes[b]);
			efree(keep);
			efree(p);
		}
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(small, 0);

	/* One block grown step by step to 16 MiB, then shrunk back to 1 byte. */
	{
		size_t n = 1, grow_bad = 0, shrink_bad = 0;
		char *p = emalloc(n);
		fill(p, n, 7);
		while (n < (16u << 20)) {
			size_t m = n * 2 + (n & 1) * 3;
			p = erealloc(p, m);
			grow_bad += mismatches(p, n, 7);
			fill(p, m, 7);
			n = m;
		}
		while (n > 1) {
			n /= 2;
			p = erealloc(p, n);
			shrink_bad += mismatches(p, n, 7);
			shrink_bad += zend_mem_block_size(p) < n;
		}
		CHECK_EQ(grow_bad, 0);
		CHECK_EQ(shrink_bad, 0);
		efree(p);
	}
	/* Same size again is fine too. */
	{
		char *p = emalloc(3000);
		fill(p, 3000, 3);
		p = erealloc(p, 3000);
		CHECK_EQ(mismatches(p, 3000, 3), 0);
		efree(p);
	}
	CHECK_EQ(zend_memory_usage(false), before);
	CHECK_EQ(zendmm_check_heap(NULL), 0);
}

static void test_erealloc2(void)
{
	size_t before = zend_memory_usage(false);
	char *p = emalloc(1000);

	fill(p, 1000, 42);
	p = erealloc2(p, 5000, 10);
	CHECK_EQ(mismatches(p, 10, 42), 0);
	CHECK(zend_mem_block_size(p) >= 5000);
	fill(p, 5000, 43);
	p = erealloc2(p, 100, 50);
	CHECK_EQ(mismatches(p, 50, 43), 0);
	p = erealloc2(p, 2u << 20, 100);
	CHECK_EQ(mismatches(p, 50, 43), 0);
	CHECK(zend_mem_block_size(p) >= (2u << 20));
	fill(p, 2u << 20, 44);
	p = erealloc2(p, 3u << 20, 1u << 20);
	CHECK_EQ(mismatches(p, 1u << 20, 44), 0);
	p = erealloc2(p, 10, 0);
	CHECK(p != NULL);
	efree(p);
	p = erealloc2(NULL, 64, 0);
	CHECK(p != NULL);
	efree(p);
	CHECK_EQ(zend_memory_usage(false), before);
	CHECK_EQ(zendmm_check_heap(NULL), 0);
}

static void test_strings(void)
{
	size_t before = zend_memory_usage(false);
	static const char hello[] = "hello world";
	char *s = estrdup(hello);
	char *t = estrndup(hello, 5);
	char *e = estrdup("");
	char *z = estrndup(hello, 0);
	char *big = emalloc(100001);

	CHECK(s != hello);
	CHECK_STR_EQ(s, "hello world");
	CHECK(zend_mem_block_size(s) >= sizeof hello);
	CHECK_STR_EQ(t, "hello");
	CHECK(zend_mem_block_size(t) >= 6);
	CHECK_STR_EQ(e, "");
	CHECK_STR_EQ(z, "");
	memset(big, 'x', 100000);
	big[100000] = '\0';
	{
		char *copy = estrdup(big);
		char *part = estrndup(big, 70000);
		CHECK_EQ(strlen(copy), 100000);
		CHECK(memcmp(copy, big, 100001) == 0);
		CHECK_EQ(strlen(part), 70000);
		efree(copy);
		efree(part);
	}
	efree(big);
	efree(s);
	efree(t);
	efree(e);
	efree(z);
	CHECK_EQ(zend_memory_usage(false), before);
}

static void test_safe_alloc(void)
{
	size_t before = zend_memory_usage(false);
	char *p = safe_emalloc(10, 100, 8);

	CHECK(zend_mem_block_size(p) >= 1008);
	fill(p, 1008, 5);
	p = safe_erealloc(p, 20, 100, 8);
	CHECK(zend_mem_block_size(p) >= 2008);
	CHECK_EQ(mismatches(p, 1008, 5), 0);
	p = safe_erealloc(p, 1, 100, 0);
	CHECK_EQ(mismatches(p, 100, 5), 0);
	efree(p);
	p = safe_emalloc(1000, 1000, 0); /* 1 MB: dedicated segment */
	CHECK(zend_mem_block_size(p) >= 1000000);
	memset(p, 1, 1000000);
	efree(p);
	CHECK_EQ(zend_memory_usage(false), before);

	p = safe_pemalloc(3, 5, 1, 1);
	memcpy(p, "0123456789abcdef", 16);
	p = safe_perealloc(p, 4, 100, 0, 1);
	CHECK(memcmp(p, "0123456789abcdef", 16) == 0);
	pefree(p, 1);
	p = safe_pemalloc(3, 5, 1, 0);
	CHECK(zend_mem_block_size(p) >= 16);
	p = safe_perealloc(p, 4, 100, 0, 0);
	CHECK(zend_mem_block_size(p) >= 400);
	pefree(p, 0);
	p = _safe_malloc(7, 7, 7);
	p = _safe_realloc(p, 8, 8, 8);
	free(p);
	CHECK_EQ(zend_memory_usage(false), before);
	CHECK_EQ(zendmm_check_heap(NULL), 0);
}

static void test_persistent(void)
{
	size_t before = zend_memory_usage(false);
	size_t real_before = zend_memory_usage(true);
	char *p = pemalloc(1000, 1);
	char *f = (pemalloc)(1000, true);
	char *q;

	/* Persistent blocks come from libc: no zendmm accounting. */
	CHECK_EQ(zend_memory_usage(false), before);
	CHECK_EQ(zend_memory_usage(true), real_before);
	strcpy(p, "persistent");
	strcpy(f, "function");
	p = perealloc(p, 200000, 1);
	f = (perealloc)(f, 300000, true);
	CHECK_STR_EQ(p, "persistent");
	CHECK_STR_EQ(f, "function");
	CHECK_EQ(zend_memory_usage(false), before);
	pefree(p, 1);
	(pefree)(f, true);

	q = pemalloc(1000, 0); /* request memory */
	CHECK(zend_memory_usage(false) >= before + true_size(1000));
	CHECK(zend_mem_block_size(q) >= 1000);
	q = perealloc(q, 3000, 0);
	pefree(q, 0);
	q = (pemalloc)(1000, false);
	CHECK(zend_memory_usage(false) >= before + true_size(1000));
	q = (perealloc)(q, 5000, false);
	CHECK(zend_mem_block_size(q) >= 5000);
	(pefree)(q, false);
	CHECK_EQ(zend_memory_usage(false), before);

	{
		unsigned char *z = pecalloc(100, 10, 1);
		unsigned char *zf = (pecalloc)(100, 10, true);
		unsigned char *ze = pecalloc(100, 10, 0);
		unsigned char *zef = (pecalloc)(100, 10, false);
		CHECK_EQ(nonzero(z, 1000), 0);
		CHECK_EQ(nonzero(zf, 1000), 0);
		CHECK_EQ(nonzero(ze, 1000), 0);
		CHECK_EQ(nonzero(zef, 1000), 0);
		CHECK(zend_memory_usage(false) >= before + 2 * true_size(1000));
		pefree(z, 1);
		pefree(zf, 1);
		pefree(ze, 0);
		pefree(zef, 0);
	}
	{
		char *s1 = pestrdup("abc", 1);
		char *s2 = (pestrdup)("def", true);
		char *s3 = pestrndup("abcdef", 3, 1);
		char *s4 = pestrdup("ghi", 0);
		char *s5 = pestrndup("abcdef", 4, 0);
		char *s6 = __zend_strdup("jkl");
		char *s7 = zend_strndup("mnopq", 2);
		CHECK_STR_EQ(s1, "abc");
		CHECK_STR_EQ(s2, "def");
		CHECK_STR_EQ(s3, "abc");
		CHECK_STR_EQ(s4, "ghi");
		CHECK_STR_EQ(s5, "abcd");
		CHECK_STR_EQ(s6, "jkl");
		CHECK_STR_EQ(s7, "mn");
		free(s1);
		free(s2);
		free(s3);
		efree(s4);
		efree(s5);
		free(s6);
		free(s7);
	}
	{
		unsigned char *c = __zend_calloc(64, 64);
		char *m = __zend_malloc(100);
		CHECK_EQ(nonzero(c, 4096), 0);
		strcpy(m, "zend_malloc");
		m = __zend_realloc(m, 100000);
		CHECK_STR_EQ(m, "zend_malloc");
		free(c);
		free(m);
	}
	CHECK_EQ(zend_memory_usage(false), before);
	CHECK_EQ(zend_memory_usage(true), real_before);
}

static void test_heap_objects(void)
{
	zend_mm_heap *def = zend_mm_get_heap();
	zend_mm_heap *h = zend_mm_startup();
	zend_mm_heap *h2 = zend_mm_startup();
	size_t h0, h0_real, d0 = heap_usage(def);
	char *a, *b, *e;

	CHECK(h != NULL && h2 != NULL);
	CHECK(h != def && h2 != def && h != h2);
	h0 = heap_usage(h);
	h0_real = heap_real(h);
	CHECK(h0_real >= SEG);
	CHECK_EQ(heap_usage(h2), h0);

	/* Independent accounting. */
	a = zend_mm_alloc(h, 1000);
	CHECK(a != NULL);
	CHECK(zend_mm_block_size(h, a) >= 1000);
	CHECK_EQ(heap_usage(h), h0 + true_size(1000));
	CHECK_EQ(heap_usage(def), d0);
	CHECK_EQ(heap_usage(h2), h0);
	fill(a, 1000, 1);
	a = zend_mm_realloc(h, a, 100000);
	CHECK_EQ(mismatches(a, 1000, 1), 0);
	CHECK(zend_mm_block_size(h, a) >= 100000);
	fill(a, 100000, 2);
	a = zend_mm_realloc2(h, a, 2u << 20, 5000);
	CHECK_EQ(mismatches(a, 5000, 2), 0);
	b = zend_mm_alloc(h2, 1000);
	CHECK_EQ(heap_usage(h2), h0 + true_size(1000));
	CHECK_EQ(heap_usage(def), d0);
	CHECK_EQ(zend_memory_usage(false), d0);
	CHECK_EQ(zendmm_check_heap(h), 0);
	CHECK_EQ(zendmm_check_heap(h2), 0);

	/* zend_mm_set_heap routes emalloc. */
	CHECK(zend_mm_set_heap(h) == def);
	CHECK(zend_mm_get_heap() == h);
	e = emalloc(500);
	CHECK_EQ(heap_usage(def), d0);
	CHECK(heap_usage(h) >= h0 + true_size(500));
	CHECK_EQ(zend_memory_usage(false), heap_usage(h));
	efree(e);
	CHECK(zend_mm_set_heap(NULL) == h); /* NULL selects the built-in default */
	CHECK(zend_mm_get_heap() == def);
	CHECK(zend_mm_set_heap(def) == def);
	CHECK(zend_mm_get_heap() == def);
	CHECK_EQ(zend_memory_usage(false), d0);

	zend_mm_free(h, a);
	zend_mm_free(h2, b);
	CHECK_EQ(heap_usage(h), h0);
	CHECK_EQ(heap_usage(h2), h0);

	/* Request shutdown of a heap object brings it back to its start state. */
	for (int i = 0; i < 100; i++)
		(void)zend_mm_alloc(h, (size_t)(i * 977 % 20000));
	(void)zend_mm_alloc(h, 3u << 20);
	zend_mm_shutdown(h, false, true);
	CHECK_EQ(heap_usage(h), h0);
	CHECK_EQ(heap_real(h), h0_real);
	CHECK_EQ(zendmm_check_heap(h), 0);
	a = zend_mm_alloc(h, 64);
	CHECK(a != NULL);
	zend_mm_free(h, a);
	zend_mm_shutdown(h, true, true);
	zend_mm_shutdown(h2, true, true);
	CHECK_EQ(heap_usage(def), d0);
	CHECK_EQ(zendmm_check_heap(NULL), 0);
}

static void test_stats(void)
{
	zendmm_heap_stats st, st2;
	char *p;

	/* Start from a clean request: blocks cached by the tests above can keep
	 * segments (and free space in them) alive. */
	shutdown_memory_manager(true, false);
	memset(&st, 0xff, sizeof st);
	st.size = sizeof st;
	CHECK(zendmm_stats(NULL, &st));
	CHECK_EQ(st.version, ZENDMM_STATS_VERSION);
	CHECK_EQ(st.usage, zend_memory_usage(false));
	CHECK_EQ(st.real_usage, zend_memory_usage(true));
	CHECK_EQ(st.peak, zend_memory_peak_usage(false));
	CHECK_EQ(st.real_peak, zend_memory_peak_usage(true));
	CHECK(st.segments >= 1);
	CHECK(st.limit >= st.real_usage);
	CHECK(st.real_peak >= st.real_usage);
	CHECK(st.peak >= st.usage);
	CHECK((st.cached_blocks == 0) == (st.cached_bytes == 0));
	CHECK((st.free_small_blocks == 0) == (st.free_small_bytes == 0));
	CHECK((st.free_large_blocks == 0) == (st.free_large_bytes == 0));
	CHECK((st.free_rest_blocks == 0) == (st.free_rest_bytes == 0));
	CHECK(st.cached_bytes + st.free_small_bytes + st.free_large_bytes + st.free_rest_bytes + st.usage
	      <= st.real_usage);

	memset(&st2, 0, sizeof st2);
	st2.size = sizeof st2;
	CHECK(zendmm_stats(zend_mm_get_heap(), &st2));
	CHECK_EQ(st2.usage, st.usage);
	CHECK_EQ(st2.segments, st.segments);

	/* A 1 MiB block gets a segment of its own. */
	p = emalloc(1u << 20);
	memset(&st2, 0, sizeof st2);
	st2.size = sizeof st2;
	CHECK(zendmm_stats(NULL, &st2));
	CHECK_EQ(st2.segments, st.segments + 1);
	CHECK_EQ(st2.real_usage, st.real_usage + 1310720);
	efree(p);
	memset(&st2, 0, sizeof st2);
	st2.size = sizeof st2;
	CHECK(zendmm_stats(NULL, &st2));
	CHECK_EQ(st2.segments, st.segments);
	CHECK_EQ(st2.real_usage, st.real_usage);
	CHECK_EQ(st2.usage, st.usage);

	/* A freed small block goes to the fastcache. */
	p = emalloc(100);
	efree(p);
	memset(&st2, 0, sizeof st2);
	st2.size = sizeof st2;
	CHECK(zendmm_stats(NULL, &st2));
	CHECK(st2.cached_bytes >= st.cached_bytes + true_size(100));
	CHECK(st2.cached_blocks >= st.cached_blocks + 1);
	CHECK_EQ(st2.usage, st.usage);
}

/* ---- random walk -------------------------------------------------------- */

enum { SLOTS = 512, OPS = 10000 };

static size_t random_size(void)
{
	uint64_t r = rng() % 100;
	if (r < 70)
		return (size_t)(rng() % 521);             /* small */
	if (r < 95)
		return 521 + (size_t)(rng() % 65000);     /* large */
	if (r < 99)
		return 65536 + (size_t)(rng() % 200000);  /* large, up to ~256 KiB */
	return 262144 + (size_t)(rng() % (2u << 20)); /* dedicated segment */
}

static void test_random_mix(void)
{
	static char *slot[SLOTS];
	static size_t len[SLOTS];
	static unsigned seed[SLOTS];
	size_t before = zend_memory_usage(false);
	size_t bad = 0, heap_problems = 0, accounting = 0;

	for (int op = 0; op < OPS; op++) {
		int i = (int)(rng() % SLOTS);
		unsigned r = (unsigned)(rng() % 10);

		if (slot[i] != NULL)
			bad += mismatches(slot[i], len[i], seed[i]);
		if (slot[i] == NULL || r < 3) {
			size_t n = random_size();
			efree(slot[i]);
			switch (rng() % 3) {
			case 0: slot[i] = emalloc(n); break;
			case 1: slot[i] = ecalloc(1, n); bad += nonzero(slot[i], n); break;
			default: slot[i] = safe_emalloc(1, n, 0); break;
			}
			len[i] = n;
			seed[i] = (unsigned)op;
			fill(slot[i], n, seed[i]);
		} else if (r < 7) {
			size_t n = random_size();
			slot[i] = erealloc(slot[i], n);
			bad += mismatches(slot[i], min_sz(n, len[i]), seed[i]);
			len[i] = n;
			fill(slot[i], n, seed[i]);
		} else {
			efree(slot[i]);
			slot[i] = NULL;
		}
		if (op % 1000 == 999) {
			size_t lower = before, upper = before;
			heap_problems += zendmm_check_heap(NULL);
			for (int k = 0; k < SLOTS; k++) {
				if (slot[k] != NULL) {
					lower += true_size(len[k]);
					upper += zend_mem_block_size(slot[k]) + 16;
				}
			}
			accounting += zend_memory_usage(false) < lower || zend_memory_usage(false) > upper;
		}
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(heap_problems, 0);
	CHECK_EQ(accounting, 0);
	CHECK_EQ(zendmm_check_heap(NULL), 0);
	for (int i = 0; i < SLOTS; i++) {
		if (slot[i] != NULL)
			bad += mismatches(slot[i], len[i], seed[i]);
		efree(slot[i]);
		slot[i] = NULL;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(zend_memory_usage(false), before);
	CHECK_EQ(zendmm_check_heap(NULL), 0);
}

/* ---- corruption --------------------------------------------------------- */

static int double_free_large(void *arg)
{
	/* 5000 bytes: past the fastcache's largest size (4112 bytes), so the
	 * second free meets a free block in the lists, not a cached one. */
	char *a = emalloc(5000), *p = emalloc(5000), *b = emalloc(5000);
	(void)arg;
	efree(p);
	efree(p); /* must not return */
	efree(a);
	efree(b);
	return 0;
}

static void test_double_free_detected(void)
{
	th_child res;
	SKIP_UNDER_VALGRIND("memcheck reports the second efree as an invalid free");
	CHECK(th_run_child(&res, double_free_large, NULL) == 0);
	CHECK_SIGNAL(&res, SIGABRT);
	CHECK_FIRST_LINE(&res, "zend_mm_heap corrupted");
}

/* A block of 2 GiB or more gets a mapping of its own (src/huge.rs); its
 * pages are never touched here but the first and the last. */
static int huge_blocks(void *arg)
{
	const size_t big = (size_t)3 << 30;
	size_t base = zend_memory_usage(false), real = zend_memory_usage(true);
	unsigned char *p, *q, *r;

	(void)arg;
	if (zend_set_memory_limit((size_t)1 << 40) != 0)
		return 1;
	p = emalloc(big);
	p[0] = 1;
	p[big - 1] = 2;
	if ((uintptr_t)p % 16 != 0 || zend_mem_block_size(p) < big || !is_zend_ptr(p + big - 1))
		return 2;
	if (zend_memory_usage(false) < base + big || zend_memory_usage(true) < real + big)
		return 3;
	q = erealloc(p, big + ((size_t)1 << 20)); /* remapped */
	if (q[0] != 1 || q[big - 1] != 2 || zend_mem_block_size(q) < big + ((size_t)1 << 20))
		return 4;
	r = erealloc(q, 100); /* back into a segment */
	if (r[0] != 1 || zend_mem_block_size(r) != 104 || is_zend_ptr(q + big - 1))
		return 5;
	efree(r);
	p = ecalloc(1, (size_t)1 << 31);
	if (p[12345] != 0 || p[((size_t)1 << 31) - 1] != 0)
		return 6;
	efree(p);
	if (zend_memory_usage(false) != base || zendmm_check_heap(NULL) != 0)
		return 7;
	p = emalloc(big); /* a leak: the request end takes it back */
	shutdown_memory_manager(true, false); /* silent request end */
	return zend_memory_usage(true) < big ? 0 : 8;
}

static void test_huge_blocks(void)
{
	SKIP_UNDER_TOOLS("the tools would track gigabytes of address space");
	th_child res;
	CHECK(th_run_child(&res, huge_blocks, NULL) == 0);
	CHECK_EXIT(&res, 0);
}

int main(void)
{
	start_memory_manager();
	RUN(test_baseline);
	RUN(test_zero_and_null);
	RUN(test_alignment_and_block_size);
	RUN(test_distinct_blocks);
	RUN(test_calloc_zeroes);
	RUN(test_realloc_keeps_contents);
	RUN(test_erealloc2);
	RUN(test_strings);
	RUN(test_safe_alloc);
	RUN(test_persistent);
	RUN(test_heap_objects);
	RUN(test_stats);
	RUN(test_random_mix);
	RUN(test_huge_blocks);
	RUN(test_double_free_detected);
	shutdown_memory_manager(true, true);
	return th_report("test_api");
}
