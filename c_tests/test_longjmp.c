/*
 * test_longjmp.c - PHP-style bailout: an error handler longjmps out of a
 * failed allocation, the application ends the request with
 * shutdown_memory_manager(true, false), and the next request works.
 */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "zendmm_alloc.h"
#include "test_helper.h"

#define SEG ((size_t)262144)
#define RESERVE_TRUE_SIZE ((size_t)8208)
#define LIMIT ((size_t)2 << 20)
#define ROUNDS 100


static void other_handler(zendmm_error_kind kind, const char *message)
{
	(void)kind;
	(void)message;
}

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

/* ---- a "script" that runs out of memory deep inside nested calls -------- */

typedef struct node {
	struct node *next;
	char *payload;
	size_t len;
} node;

enum { MODE_LARGE, MODE_SMALL, MODE_DEDICATED, MODE_REALLOC, MODE_OVERFLOW, MODE_CALLOC, MODES };

static node *nest(int depth, int mode)
{
	node *n = emalloc(sizeof *n);
	char *buf = NULL;

	switch (mode) {
	case MODE_LARGE:
		n->len = 65536;
		break;
	case MODE_SMALL:
		n->len = 100;
		break;
	case MODE_DEDICATED:
		n->len = 1u << 20;
		break;
	case MODE_REALLOC:
		/* a growing buffer next to other live blocks */
		n->len = 1000;
		buf = estrdup("start");
		for (size_t sz = 64; sz < ((size_t)1 << 30); sz *= 2) {
			buf = erealloc(buf, sz);
			memset(buf, 'r', sz);
			if (depth < 8 && sz >= 4096)
				break;
		}
		break;
	case MODE_OVERFLOW:
		n->len = 300;
		if (depth == 40)
			buf = safe_emalloc(SIZE_MAX / 8, 16, 8);
		break;
	default: /* MODE_CALLOC */
		n->len = 5000;
		if (depth == 20)
			buf = ecalloc(1, 4u << 20);
		break;
	}
	n->payload = emalloc(n->len);
	memset(n->payload, 'p', n->len);
	if (depth % 3 == 0)
		efree(estrdup("temporary"));
	/* the limit is hit long before the bound */
	n->next = depth < 1000000 ? nest(depth + 1, mode) : NULL;
	efree(buf);
	return n;
}

static size_t dedicated_segment(size_t n)
{
	return round_up(round_up(n + 16, 8) + 48, SEG);
}

static void expected_message(int mode, char *out, size_t cap)
{
	switch (mode) {
	case MODE_LARGE:
	case MODE_SMALL:
		snprintf(out, cap, "Allowed memory size of %zu bytes exhausted (tried to allocate %zu bytes)",
		         LIMIT, SEG);
		break;
	case MODE_DEDICATED:
	case MODE_CALLOC:
		snprintf(out, cap, "Allowed memory size of %zu bytes exhausted (tried to allocate %zu bytes)",
		         LIMIT, dedicated_segment(mode == MODE_DEDICATED ? 1u << 20 : 4u << 20));
		break;
	case MODE_OVERFLOW:
		snprintf(out, cap, "Possible integer overflow in memory allocation (%zu * 16 + 8)", SIZE_MAX / 8);
		break;
	default: /* the realloc path: only the start is fixed */
		snprintf(out, cap, "Allowed memory size of %zu bytes exhausted (tried to allocate ", LIMIT);
		break;
	}
}

/* A normal request: allocate, touch, free some, leave the rest. */
static int normal_request(int round)
{
	enum { N = 300 };
	char *p[N];
	int bad = 0;
	zend_set_memory_limit((size_t)64 << 20);
	for (int i = 0; i < N; i++) {
		size_t n = (size_t)((i * 7919 + round * 104729) % 6000);
		if (i % 50 == 0)
			n = 300000; /* dedicated segment, within the limit */
		p[i] = emalloc(n);
		memset(p[i], (unsigned char)i, n);
	}
	for (int i = 0; i < N; i += 2)
		efree(p[i]);
	for (int i = 1; i < N; i += 2) {
		size_t n = (size_t)((i * 7919 + round * 104729) % 6000);
		if (i % 50 == 0)
			n = 300000;
		for (size_t k = 0; k < n; k++)
			bad += (unsigned char)p[i][k] != (unsigned char)i;
	}
	return bad;
}

/* ---- tests -------------------------------------------------------------- */

static void test_set_error_handler_returns_previous(void)
{
	CHECK(zendmm_set_error_handler(th_bail) == NULL);
	CHECK(zendmm_set_error_handler(other_handler) == th_bail);
	CHECK(zendmm_set_error_handler(NULL) == other_handler);
	CHECK(zendmm_set_error_handler(NULL) == NULL);
}

static void test_bailout_rounds(void)
{
	static volatile int round;
	static volatile int no_bailout, wrong_kind, wrong_msg, heap_problems, not_baseline, bad_next;
	char want[512];

	zendmm_set_error_handler(th_bail);
	for (round = 0; round < ROUNDS; round++) {
		int mode = round % MODES;
		TH_BAIL.calls = 0;
		TH_BAIL.kind = 0;
		TH_BAIL.msg[0] = '\0';
		if (zend_set_memory_limit(LIMIT) != 0)
			no_bailout++;
		if (setjmp(TH_BAIL.jump) == 0) {
			(void)nest(0, mode);
			no_bailout++;
		}
		mode = round % MODES; /* re-read after longjmp */
		if (TH_BAIL.calls != 1)
			no_bailout++;
		if (TH_BAIL.kind != (mode == MODE_OVERFLOW ? ZENDMM_ERROR_SIZE_OVERFLOW : ZENDMM_ERROR_MEMORY_LIMIT))
			wrong_kind++;
		expected_message(mode, want, sizeof want);
		if (mode == MODE_REALLOC ? strncmp(TH_BAIL.msg, want, strlen(want)) != 0
		                         : strcmp(TH_BAIL.msg, want) != 0) {
			if (wrong_msg++ == 0)
				printf("  round %d: got \"%s\"\n      expected \"%s\"\n", round, TH_BAIL.msg, want);
		}

		shutdown_memory_manager(true, false);
		heap_problems += (int)zendmm_check_heap(NULL);
		if (zend_memory_usage(false) != RESERVE_TRUE_SIZE || zend_memory_usage(true) != SEG ||
		    zend_memory_peak_usage(false) != RESERVE_TRUE_SIZE || zend_memory_peak_usage(true) != SEG) {
			if (not_baseline++ == 0)
				printf("  round %d: after shutdown usage %zu/%zu peak %zu/%zu\n", round,
				       zend_memory_usage(false), zend_memory_usage(true),
				       zend_memory_peak_usage(false), zend_memory_peak_usage(true));
		}

		/* the next request runs normally */
		bad_next += normal_request(round);
		heap_problems += (int)zendmm_check_heap(NULL);
		shutdown_memory_manager(true, false);
		heap_problems += (int)zendmm_check_heap(NULL);
		if (zend_memory_usage(false) != RESERVE_TRUE_SIZE || zend_memory_usage(true) != SEG)
			not_baseline++;
	}
	zendmm_set_error_handler(NULL);
	CHECK_EQ(no_bailout, 0);
	CHECK_EQ(wrong_kind, 0);
	CHECK_EQ(wrong_msg, 0);
	CHECK_EQ(heap_problems, 0);
	CHECK_EQ(not_baseline, 0);
	CHECK_EQ(bad_next, 0);
}

/* Persistent memory is untouched by a bailout and the request shutdown. */
static void test_persistent_survives_bailout(void)
{
	static char *volatile table;
	static volatile int jumped;

	table = pestrdup("persistent table", 1);
	jumped = 0;
	zendmm_set_error_handler(th_bail);
	zend_set_memory_limit(LIMIT);
	if (setjmp(TH_BAIL.jump) == 0)
		(void)nest(0, MODE_LARGE);
	else
		jumped = 1;
	shutdown_memory_manager(true, false);
	zendmm_set_error_handler(NULL);
	CHECK(jumped);
	CHECK_STR_EQ(table, "persistent table");
	pefree(table, 1);
	CHECK_EQ(zendmm_check_heap(NULL), 0);
}

/* The handler may allocate: the freed 8 KiB reserve leaves room for it. */
static void allocating_handler(zendmm_error_kind kind, const char *message)
{
	char *copy = estrdup(message);
	char *scratch = emalloc(2000);
	memset(scratch, 0, 2000);
	snprintf(TH_BAIL.msg, sizeof TH_BAIL.msg, "%s", copy);
	TH_BAIL.kind = (int)kind;
	efree(scratch);
	efree(copy);
	longjmp(TH_BAIL.jump, 1);
}

static int allocate_in_handler(void *arg)
{
	(void)arg;
	zendmm_set_error_handler(allocating_handler);
	zend_set_memory_limit(1u << 20);
	if (setjmp(TH_BAIL.jump) == 0) {
		(void)nest(0, MODE_LARGE);
		return 1;
	}
	if (TH_BAIL.kind != ZENDMM_ERROR_MEMORY_LIMIT)
		return 2;
	if (strcmp(TH_BAIL.msg, "Allowed memory size of 1048576 bytes exhausted (tried to allocate 262144 bytes)") != 0)
		return 3;
	shutdown_memory_manager(true, false);
	if (zendmm_check_heap(NULL) != 0)
		return 4;
	if (zend_memory_usage(false) != RESERVE_TRUE_SIZE || zend_memory_usage(true) != SEG)
		return 5;
	if (normal_request(1) != 0)
		return 6;
	return 0;
}

static void test_handler_may_allocate(void)
{
	th_child res;
	CHECK(th_run_child(&res, allocate_in_handler, NULL) == 0);
	CHECK_EXIT(&res, 0);
}

/* A handler that returns: zendmm goes on with the default action. */
static void returning_handler(zendmm_error_kind kind, const char *message)
{
	fprintf(stderr, "handler saw kind=%d: %s\n", (int)kind, message);
}

static int limit_with_returning_handler(void *arg)
{
	(void)arg;
	zendmm_set_error_handler(returning_handler);
	zend_set_memory_limit(1u << 20);
	(void)nest(0, MODE_LARGE);
	return 0;
}

static int overflow_with_returning_handler(void *arg)
{
	(void)arg;
	zendmm_set_error_handler(returning_handler);
	efree(ecalloc(SIZE_MAX / 2, 4));
	return 0;
}

static void test_returning_handler_exits_255(void)
{
	th_child res;
	char want[1024];

	CHECK(th_run_child(&res, limit_with_returning_handler, NULL) == 0);
	CHECK_EXIT(&res, 255);
	snprintf(want, sizeof want,
	         "handler saw kind=%d: Allowed memory size of 1048576 bytes exhausted (tried to allocate 262144 bytes)\n"
	         "PHP Fatal error:  Allowed memory size of 1048576 bytes exhausted (tried to allocate 262144 bytes)\n",
	         (int)ZENDMM_ERROR_MEMORY_LIMIT);
	CHECK_STDERR(&res, want);

	CHECK(th_run_child(&res, overflow_with_returning_handler, NULL) == 0);
	CHECK_EXIT(&res, 255);
	snprintf(want, sizeof want,
	         "handler saw kind=%d: Possible integer overflow in memory allocation (%zu * 4 + 0)\n"
	         "PHP Fatal error:  Possible integer overflow in memory allocation (%zu * 4 + 0)\n",
	         (int)ZENDMM_ERROR_SIZE_OVERFLOW, SIZE_MAX / 2, SIZE_MAX / 2);
	CHECK_STDERR(&res, want);
}

/* Restoring the default handler restores the default action. */
static int limit_after_restoring_default(void *arg)
{
	(void)arg;
	zendmm_set_error_handler(th_bail);
	zendmm_set_error_handler(NULL);
	zend_set_memory_limit(1u << 20);
	(void)nest(0, MODE_LARGE);
	return 0;
}

static void test_default_restored(void)
{
	th_child res;
	CHECK(th_run_child(&res, limit_after_restoring_default, NULL) == 0);
	CHECK_EXIT(&res, 255);
	CHECK_STDERR(&res, "PHP Fatal error:  Allowed memory size of 1048576 bytes exhausted "
	                   "(tried to allocate 262144 bytes)\n");
}

int main(void)
{
	start_memory_manager();
	RUN(test_set_error_handler_returns_previous);
	RUN(test_bailout_rounds);
	RUN(test_persistent_survives_bailout);
	RUN(test_handler_may_allocate);
	RUN(test_returning_handler_exits_255);
	RUN(test_default_restored);
	shutdown_memory_manager(true, true);
	return th_report("test_longjmp");
}
