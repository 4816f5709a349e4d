/*
 * test_env.c - ZEND_MM_MEM_TYPE, ZEND_MM_SEG_SIZE and ZEND_MM_COMPACT.
 * Each case runs in a forked child that sets the variables and then calls
 * start_memory_manager(); this process never starts the manager itself.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "zendmm_alloc.h"
#include "test_helper.h"

#define RESERVE_TRUE_SIZE ((size_t)8208)

static size_t true_size(size_t n) { return n < 24 ? 32 : (n + 8 + 15) & ~(size_t)15; }
static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed + i * 7 + (i >> 12));
}

static int same(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(seed + i * 7 + (i >> 12)))
			return 0;
	return 1;
}

#define STEP_EQ(a, b)                                                            \
	do {                                                                         \
		size_t a_ = (a), b_ = (b);                                               \
		if (a_ != b_) {                                                          \
			fprintf(stderr, "%s:%d: failed in the child: %s == %s (%zu != %zu)\n", \
			        __FILE__, __LINE__, #a, #b, a_, b_);                         \
			return 1;                                                            \
		}                                                                        \
	} while (0)

/* Work a heap started with the child's environment. seg is the expected
 * segment size, or 0 when the start-up layout is not checked. */
static int storage_roundtrip(void *arg)
{
	size_t seg = *(const size_t *)arg;
	size_t r0 = zend_memory_usage(true), u0 = zend_memory_usage(false);
	unsigned char *p, *small[64];

	STEP(is_zend_mm());
	if (seg != 0) {
		STEP_EQ(r0, seg);
		STEP_EQ(u0, RESERVE_TRUE_SIZE);
	}

	/* 4 MiB: grow, shrink, free */
	p = emalloc(4u << 20);
	fill(p, 4u << 20, 1);
	p = erealloc(p, 6u << 20);
	STEP(same(p, 4u << 20, 1));
	fill(p, 6u << 20, 2);
	p = erealloc(p, 1u << 20);
	STEP(same(p, 1u << 20, 2));
	p = erealloc(p, 1000);
	STEP(same(p, 1000, 2));
	p = erealloc(p, 4u << 20);
	STEP(same(p, 1000, 2));
	efree(p);
	STEP_EQ(zend_memory_usage(false), u0);
	STEP_EQ(zendmm_check_heap(NULL), 0);

	p = ecalloc(1, 3u << 20);
	for (size_t i = 0; i < (3u << 20); i++)
		STEP(p[i] == 0);
	efree(p);

	/* a block just too big for a segment gets a dedicated one */
	if (seg != 0 && seg <= (16u << 20)) {
		size_t n = seg + seg / 2;
		p = emalloc(n);
		memset(p, 0x3c, n);
		STEP_EQ(zend_memory_usage(true), r0 + round_up(true_size(n) + 48, seg));
		efree(p);
		STEP_EQ(zend_memory_usage(true), r0);
	}

	for (int i = 0; i < 64; i++) {
		small[i] = emalloc((size_t)i * 40);
		fill(small[i], (size_t)i * 40, (unsigned)i);
	}
	for (int i = 0; i < 64; i++) {
		STEP(same(small[i], (size_t)i * 40, (unsigned)i));
		efree(small[i]);
	}
	STEP_EQ(zend_memory_usage(false), u0);
	STEP_EQ(zendmm_check_heap(NULL), 0);

	/* requests on this storage */
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 200; i++)
			memset(emalloc((size_t)i * 300), 1, (size_t)i * 300);
		memset(emalloc(3u << 20), 2, 3u << 20);
		shutdown_memory_manager(true, false);
		STEP_EQ(zendmm_check_heap(NULL), 0);
		STEP_EQ(zend_memory_usage(false), u0);
		STEP_EQ(zend_memory_usage(true), r0);
	}
	shutdown_memory_manager(true, true);
	return 0;
}

/* For bad values: start_memory_manager() must not return. */
static int started(void *arg)
{
	(void)arg;
	fprintf(stderr, "start_memory_manager() returned\n");
	return 0;
}

struct good_case {
	const char *name, *value;
	size_t seg;
};

struct bad_case {
	const char *name, *value;
	const char *first_line;
};

static void run_good(const char *name, const char *value, const char *name2, const char *value2,
                     size_t seg)
{
	th_env env[3] = {{name, value}, {name2, value2}, {NULL, NULL}};
	th_child res;

	CHECK(th_run_child_env(&res, env, storage_roundtrip, &seg) == 0);
	if (!(CHECK(res.exited && res.status == 0) && CHECK_STR_EQ(res.err, ""))) {
		printf("      with %s='%s'%s%s%s%s\n", name != NULL ? name : "(defaults)",
		       value != NULL ? value : "", name2 != NULL ? " " : "", name2 != NULL ? name2 : "",
		       name2 != NULL ? "=" : "", value2 != NULL ? value2 : "");
		th_describe(&res);
	}
}

static void run_bad(const struct bad_case *c)
{
	th_env env[2] = {{c->name, c->value}, {NULL, NULL}};
	th_child res;

	CHECK(th_run_child_env(&res, env, started, NULL) == 0);
	CHECK_EXIT(&res, 255);
	CHECK_FIRST_LINE(&res, c->first_line);
}

/* ------------------------------------------------------------------------ */

static void test_defaults(void)
{
	run_good(NULL, NULL, NULL, NULL, 262144);
}

static void test_storage_types(void)
{
	static const char *const types[] = {"malloc", "mmap_anon", "mmap_zero"};
	for (size_t i = 0; i < 3; i++) {
		run_good("ZEND_MM_MEM_TYPE", types[i], NULL, NULL, 262144);
		run_good("ZEND_MM_MEM_TYPE", types[i], "ZEND_MM_SEG_SIZE", "1M", 1048576);
		run_good("ZEND_MM_MEM_TYPE", types[i], "ZEND_MM_SEG_SIZE", "64K", 65536);
	}
}

static void test_unknown_storage_type(void)
{
	static const char *const names[] = {"foo", "win32", "mmap", "malloc "};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		th_env env[2] = {{"ZEND_MM_MEM_TYPE", names[i]}, {NULL, NULL}};
		th_child res;
		char want[512];

		snprintf(want, sizeof want,
		         "Wrong or unsupported zend_mm storage type '%s'\n"
		         "  supported types:\n"
		         "    'malloc'\n"
		         "    'mmap_anon'\n"
		         "    'mmap_zero'\n",
		         names[i]);
		CHECK(th_run_child_env(&res, env, started, NULL) == 0);
		CHECK_EXIT(&res, 255);
		CHECK_STDERR(&res, want);
	}
}

static void test_seg_size_good(void)
{
	static const struct good_case cases[] = {
		{"ZEND_MM_SEG_SIZE", "64K", 65536},
		{"ZEND_MM_SEG_SIZE", "64k", 65536},
		{"ZEND_MM_SEG_SIZE", "1M", 1048576},
		{"ZEND_MM_SEG_SIZE", "1m", 1048576},
		{"ZEND_MM_SEG_SIZE", "0x100000", 1048576},
		{"ZEND_MM_SEG_SIZE", "1048576", 1048576},
		{"ZEND_MM_SEG_SIZE", "0100000", 32768}, /* base 0: octal */
		{"ZEND_MM_SEG_SIZE", "262144", 262144},
		{"ZEND_MM_SEG_SIZE", "16384", 16384},
		{"ZEND_MM_SEG_SIZE", "4096", 0},        /* smallest; the reserve needs its own segment */
		{"ZEND_MM_SEG_SIZE", "4k", 0},
		{"ZEND_MM_SEG_SIZE", "8k", 0},
		{"ZEND_MM_SEG_SIZE", "1g", 1073741824}, /* largest */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_good(cases[i].name, cases[i].value, NULL, NULL, cases[i].seg);
}

#define SEG_NUMBER "ZEND_MM_SEG_SIZE must be a number of bytes with an optional k, m or g suffix, got "

static void test_seg_size_bad(void)
{
	static const struct bad_case cases[] = {
		{"ZEND_MM_SEG_SIZE", "abc", SEG_NUMBER "'abc'"},
		{"ZEND_MM_SEG_SIZE", "", SEG_NUMBER "''"},
		{"ZEND_MM_SEG_SIZE", "k", SEG_NUMBER "'k'"},
		{"ZEND_MM_SEG_SIZE", "3000", "ZEND_MM_SEG_SIZE must be a power of two"},
		{"ZEND_MM_SEG_SIZE", "0x3000", "ZEND_MM_SEG_SIZE must be a power of two"},
		{"ZEND_MM_SEG_SIZE", "100k", "ZEND_MM_SEG_SIZE must be a power of two"},
		{"ZEND_MM_SEG_SIZE", "1k", "ZEND_MM_SEG_SIZE is too small"},
		{"ZEND_MM_SEG_SIZE", "2048", "ZEND_MM_SEG_SIZE is too small"},
		{"ZEND_MM_SEG_SIZE", "2G", "ZEND_MM_SEG_SIZE is too large"},
		{"ZEND_MM_SEG_SIZE", "2147483648", "ZEND_MM_SEG_SIZE is too large"},
		{"ZEND_MM_SEG_SIZE", "4g", "ZEND_MM_SEG_SIZE is too large"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_bad(&cases[i]);
}

static void test_compact_good(void)
{
	static const char *const values[] = {"2M", "2m", "0", "1048576", "64k", "0x200000", "1g", "1"};
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
		run_good("ZEND_MM_COMPACT", values[i], NULL, NULL, 262144);
	run_good("ZEND_MM_COMPACT", "0", "ZEND_MM_MEM_TYPE", "mmap_anon", 262144);
}

#define COMPACT_NUMBER "ZEND_MM_COMPACT must be a number of bytes with an optional k, m or g suffix, got "

static void test_compact_bad(void)
{
	static const struct bad_case cases[] = {
		{"ZEND_MM_COMPACT", "x", COMPACT_NUMBER "'x'"},
		{"ZEND_MM_COMPACT", "", COMPACT_NUMBER "''"},
		{"ZEND_MM_COMPACT", "lots", COMPACT_NUMBER "'lots'"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_bad(&cases[i]);
}

int main(void)
{
	RUN(test_defaults);
	RUN(test_storage_types);
	RUN(test_unknown_storage_type);
	RUN(test_seg_size_good);
	RUN(test_seg_size_bad);
	RUN(test_compact_good);
	RUN(test_compact_bad);
	return th_report("test_env");
}
