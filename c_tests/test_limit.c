/*
 * test_limit.c - memory_limit, out-of-memory and integer-overflow fatals.
 * Every fatal runs in a forked child; the parent checks the exact stderr
 * text and the exit status.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zendmm_alloc.h"
#include "test_helper.h"

#define SEG ((size_t)262144)

/* Under ASan, let the huge malloc() calls return NULL, and do not report
 * leaks from children that end with a fatal error (they exit on purpose
 * without freeing). */
#if defined(__SANITIZE_ADDRESS__)
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1:detect_leaks=0"; }
#endif

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

/* The segment zendmm asks for when n needs a dedicated one. */
static size_t dedicated_segment(size_t n)
{
	return round_up(round_up(n + 16, 8) + 48, SEG);
}

static char expected[512];

static const char *fatal(const char *fmt, size_t a, size_t b)
{
	char msg[400];
	snprintf(msg, sizeof msg, fmt, a, b);
	snprintf(expected, sizeof expected, "PHP Fatal error:  %s\n", msg);
	return expected;
}

static const char *overflow3(size_t nmemb, size_t size, size_t offset)
{
	snprintf(expected, sizeof expected,
	         "PHP Fatal error:  Possible integer overflow in memory allocation (%zu * %zu + %zu)\n",
	         nmemb, size, offset);
	return expected;
}

#define LIMIT_FMT "Allowed memory size of %zu bytes exhausted (tried to allocate %zu bytes)"

/* ---- children ----------------------------------------------------------- */

static volatile size_t allocated_blocks;

static int blocks_until_limit(void *arg)
{
	size_t n = *(const size_t *)arg;
	if (zend_set_memory_limit(1u << 20) != 0)
		return 10;
	for (;;) {
		char *p = emalloc(n);
		memset(p, 0x33, n);
		allocated_blocks++;
	}
}

static int grow_until_limit(void *arg)
{
	char *p = NULL;
	size_t n = 1000;
	(void)arg;
	if (zend_set_memory_limit(2u << 20) != 0)
		return 10;
	for (;;) {
		p = erealloc(p, n);
		memset(p, 0x44, n);
		n *= 2;
	}
}

struct one_alloc {
	size_t limit;
	size_t size;
	int how; /* 0 emalloc, 1 ecalloc, 2 safe_emalloc, 3 erealloc */
};

static int one_allocation(void *arg)
{
	const struct one_alloc *a = arg;
	void *p = NULL;
	if (zend_set_memory_limit(a->limit) != 0)
		return 10;
	switch (a->how) {
	case 0: p = emalloc(a->size); break;
	case 1: p = ecalloc(1, a->size); break;
	case 2: p = safe_emalloc(4, a->size / 4, 0); break;
	default: p = erealloc(emalloc(100), a->size); break;
	}
	efree(p);
	return 0; /* the allocation should not have returned */
}

struct triple {
	size_t nmemb, size, offset;
	int how; /* 0 safe_emalloc, 1 ecalloc, 2 safe_erealloc */
};

static int overflowing(void *arg)
{
	const struct triple *t = arg;
	void *p = NULL;
	switch (t->how) {
	case 0: p = safe_emalloc(t->nmemb, t->size, t->offset); break;
	case 1: p = ecalloc(t->nmemb, t->size); break;
	default: p = safe_erealloc(emalloc(64), t->nmemb, t->size, t->offset); break;
	}
	efree(p);
	return 0;
}

static int emalloc_size_max(void *arg)
{
	(void)arg;
	efree(emalloc(SIZE_MAX));
	return 0;
}

static int storage_fails(void *arg)
{
	(void)arg;
	if (zend_set_memory_limit(SIZE_MAX / 2) != 0)
		return 10;
	efree(emalloc((size_t)1 << 50)); /* beyond any address space */
	return 0;
}

/* The block the failing __zend_realloc keeps: the child exits with it, and
 * LeakSanitizer (make test-asan) must see it is still referenced. */
static void *volatile realloc_victim; /* volatile: the store must happen */

static int persistent_oom(void *arg)
{
	int how = *(const int *)arg;
	void *p = NULL;
	switch (how) {
	case 0: p = __zend_malloc(SIZE_MAX / 2); break;
	case 1: p = pemalloc(SIZE_MAX / 2, 1); break;
	case 2: p = __zend_calloc(SIZE_MAX / 4, 2); break;
	default:
		realloc_victim = __zend_malloc(16);
		p = __zend_realloc(realloc_victim, SIZE_MAX / 2);
		break;
	}
	free(p);
	return 0;
}

/* A handler that reports what it was given and ends the child. */
static void report_and_exit(zendmm_error_kind kind, const char *message)
{
	fprintf(stderr, "kind=%d blocks=%zu msg=%s\n", (int)kind, (size_t)allocated_blocks,
	        message != NULL ? message : "(null)");
	fflush(stderr);
	_exit(42);
}

static int with_handler(void *arg)
{
	int which = *(const int *)arg;
	size_t n = 65536;
	struct triple t = {SIZE_MAX, 2, 0, 1};
	zendmm_set_error_handler(report_and_exit);
	switch (which) {
	case 1: return blocks_until_limit(&n);
	case 2: return storage_fails(NULL);
	default: return overflowing(&t);
	}
}

/* ---- tests -------------------------------------------------------------- */

static void test_limit_by_blocks(void)
{
	static const size_t sizes[] = {65536, 100, 8, 600, 200000};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		th_child res;
		size_t n = sizes[i];
		CHECK(th_run_child(&res, blocks_until_limit, &n) == 0);
		CHECK_EXIT(&res, 255);
		/* a new 256 KiB segment would take real usage past 1 MiB */
		CHECK_STDERR(&res, fatal(LIMIT_FMT, 1u << 20, SEG));
	}
}

static void test_limit_counts_segments(void)
{
	/* 65552-byte blocks: three fit in each 256 KiB segment (the first one
	 * also holds the 8 KiB reserve), and the limit allows four segments. */
	th_child res;
	int which = 1;
	CHECK(th_run_child(&res, with_handler, &which) == 0);
	CHECK_EXIT(&res, 42);
	snprintf(expected, sizeof expected, "kind=%d blocks=12 msg=" LIMIT_FMT,
	         (int)ZENDMM_ERROR_MEMORY_LIMIT, (size_t)1 << 20, SEG);
	CHECK_FIRST_LINE(&res, expected);
}

static void test_limit_on_realloc_growth(void)
{
	th_child res;
	CHECK(th_run_child(&res, grow_until_limit, NULL) == 0);
	CHECK_EXIT(&res, 255);
	if (!CHECK_PREFIX(res.err, "PHP Fatal error:  Allowed memory size of 2097152 bytes exhausted "
	                           "(tried to allocate "))
		th_describe(&res);
	CHECK(strchr(res.err, '\n') == res.err + res.err_len - 1); /* one line */
}

static void test_limit_single_allocation(void)
{
	static const struct one_alloc cases[] = {
		{2u << 20, 16u << 20, 0},
		{2u << 20, 16u << 20, 1},
		{2u << 20, 16u << 20, 2},
		{2u << 20, 16u << 20, 3},
		{1u << 20, 1u << 20, 0},
		{3u << 20, 2883584, 0},
		{2u << 20, 1900000, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		th_child res;
		CHECK(th_run_child(&res, one_allocation, (void *)&cases[i]) == 0);
		CHECK_EXIT(&res, 255);
		CHECK_STDERR(&res, fatal(LIMIT_FMT, cases[i].limit, dedicated_segment(cases[i].size)));
	}
	CHECK_EQ(dedicated_segment(16u << 20), 17039360);
	CHECK_EQ(dedicated_segment(1u << 20), 1310720);
}

static void test_overflow_messages(void)
{
	static const struct triple cases[] = {
		{SIZE_MAX / 2, 3, 1, 0},
		{1, SIZE_MAX, 1, 0},
		{(size_t)1 << 32, (size_t)1 << 32, 0, 0},
		{2, SIZE_MAX / 2, 2, 0},
		{SIZE_MAX, 2, 0, 1},
		{(size_t)1 << 33, (size_t)1 << 31, 0, 1},
		{SIZE_MAX / 4, 8, 16, 2},
		{1, SIZE_MAX - 5, 6, 2},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		th_child res;
		const struct triple *t = &cases[i];
		CHECK(th_run_child(&res, overflowing, (void *)t) == 0);
		CHECK_EXIT(&res, 255);
		CHECK_STDERR(&res, overflow3(t->nmemb, t->size, t->how == 1 ? 0 : t->offset));
	}
}

static void test_emalloc_size_max(void)
{
	th_child res;
	CHECK(th_run_child(&res, emalloc_size_max, NULL) == 0);
	CHECK_EXIT(&res, 255);
	if (!CHECK_PREFIX(res.err, "PHP Fatal error:  Possible integer overflow in memory allocation ("))
		th_describe(&res);
}

static void test_out_of_memory(void)
{
	th_child res;
	size_t allocated = 0, tried = 0;
	int consumed = 0;

	CHECK(th_run_child(&res, storage_fails, NULL) == 0);
	CHECK_EXIT(&res, 255);
	if (!CHECK(sscanf(res.err, "PHP Fatal error:  Out of memory (allocated %zu bytes) "
	                           "(tried to allocate %zu bytes)\n%n",
	                  &allocated, &tried, &consumed) == 2 &&
	           (size_t)consumed == res.err_len))
		th_describe(&res);
	CHECK(allocated >= SEG);
	CHECK(tried >= (size_t)1 << 50);
}

static void test_persistent_out_of_memory(void)
{
	for (int how = 0; how < 4; how++) {
		th_child res;
		CHECK(th_run_child(&res, persistent_oom, &how) == 0);
		CHECK_EXIT(&res, 1);
		CHECK_FIRST_LINE(&res, "Out of memory");
	}
}

static void test_handler_gets_kind_and_message(void)
{
	th_child res;
	int which;

	which = 2;
	CHECK(th_run_child(&res, with_handler, &which) == 0);
	CHECK_EXIT(&res, 42);
	snprintf(expected, sizeof expected, "kind=%d blocks=0 msg=Out of memory (allocated ",
	         (int)ZENDMM_ERROR_OUT_OF_MEMORY);
	if (!CHECK_PREFIX(res.err, expected))
		th_describe(&res);

	which = 3;
	CHECK(th_run_child(&res, with_handler, &which) == 0);
	CHECK_EXIT(&res, 42);
	snprintf(expected, sizeof expected,
	         "kind=%d blocks=0 msg=Possible integer overflow in memory allocation (%zu * 2 + 0)",
	         (int)ZENDMM_ERROR_SIZE_OVERFLOW, SIZE_MAX);
	CHECK_FIRST_LINE(&res, expected);
}

static size_t current_limit(void) { return th_stats(NULL).limit; }

static void test_set_memory_limit(void)
{
	size_t original = current_limit();
	char *big;

	CHECK_EQ(zend_memory_usage(true), SEG);
	CHECK_EQ(zend_set_memory_limit(8u << 20), 0);
	CHECK_EQ(current_limit(), 8u << 20);

	big = emalloc(1u << 20); /* real usage: 262144 + 1310720 */
	CHECK_EQ(zend_memory_usage(true), SEG + 1310720);
	CHECK_EQ(zend_set_memory_limit(1u << 20), -1);
	CHECK_EQ(current_limit(), 8u << 20); /* unchanged */
	CHECK_EQ(zend_set_memory_limit(SEG), -1);
	CHECK_EQ(zend_set_memory_limit(0), -1);
	CHECK_EQ(current_limit(), 8u << 20);
	CHECK_EQ(zend_set_memory_limit(SEG + 1310720), 0); /* equal to usage is fine */
	CHECK_EQ(current_limit(), SEG + 1310720);
	CHECK_EQ(zend_set_memory_limit(2u << 20), 0);
	CHECK_EQ(current_limit(), 2u << 20);
	efree(big);
	CHECK_EQ(zend_memory_usage(true), SEG);
	CHECK_EQ(zend_set_memory_limit(1u << 20), 0);
	CHECK_EQ(current_limit(), 1u << 20);

	/* Within the limit everything works; the limit itself is not reset by
	 * a request shutdown. */
	big = emalloc(100000);
	efree(big);
	shutdown_memory_manager(true, false);
	CHECK_EQ(current_limit(), 1u << 20);
	CHECK_EQ(zend_set_memory_limit(original), 0);
	CHECK_EQ(current_limit(), original);
	CHECK_EQ(zendmm_check_heap(NULL), 0);
}

int main(void)
{
	start_memory_manager();
	RUN(test_limit_by_blocks);
	RUN(test_limit_counts_segments);
	RUN(test_limit_on_realloc_growth);
	RUN(test_limit_single_allocation);
	RUN(test_overflow_messages);
	RUN(test_emalloc_size_max);
	RUN(test_out_of_memory);
	RUN(test_persistent_out_of_memory);
	RUN(test_handler_gets_kind_and_message);
	RUN(test_set_memory_limit);
	shutdown_memory_manager(true, true);
	return th_report("test_limit");
}
