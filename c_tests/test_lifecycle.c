/*
 * test_lifecycle.c - start, request shutdown, full shutdown and restart;
 * what survives a request (persistent memory) and what is reset (usage,
 * peaks); segments given back to storage.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "zendmm_alloc.h"
#include "test_helper.h"

#define SEG ((size_t)262144)
#define RESERVE_TRUE_SIZE ((size_t)8208)

static size_t true_size(size_t n) { return n < 24 ? 32 : (n + 8 + 15) & ~(size_t)15; }
static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }
static size_t dedicated_segment(size_t n) { return round_up(true_size(n) + 48, SEG); }

static size_t segments(void) { return th_stats(NULL).segments; }

static void check_baseline(const char *when)
{
	int ok = 1;
	ok &= CHECK_EQ(zend_memory_usage(false), RESERVE_TRUE_SIZE);
	ok &= CHECK_EQ(zend_memory_usage(true), SEG);
	ok &= CHECK_EQ(zend_memory_peak_usage(false), RESERVE_TRUE_SIZE);
	ok &= CHECK_EQ(zend_memory_peak_usage(true), SEG);
	ok &= CHECK_EQ(segments(), 1);
	ok &= CHECK_EQ(zendmm_check_heap(NULL), 0);
	if (!ok)
		printf("      (baseline check %s)\n", when);
}

/* Allocate a mix of request memory and leave all of it behind. */
static void busy_request(unsigned round)
{
	for (unsigned i = 0; i < 3000; i++) {
		size_t n = (i * 2654435761u + round) % 2000;
		char *p = emalloc(n);
		memset(p, (int)i, n);
		if (i % 3 == 0)
			efree(p);
	}
	for (unsigned i = 0; i < 4; i++)
		memset(emalloc(100000 + i), 1, 100000);
	memset(emalloc(3u << 20), 2, 3u << 20);
	{
		char *s = estrdup("grow");
		for (size_t n = 8; n < 600000; n *= 3)
			s = erealloc(s, n);
	}
}

/* ------------------------------------------------------------------------ */

static void test_start_baseline(void)
{
	check_baseline("after start_memory_manager");
	CHECK(is_zend_mm());
}

static void test_exact_accounting(void)
{
	static const size_t sizes[] = {16, 100, 520, 521, 1000, 4000, 65536, 200000};
	shutdown_memory_manager(true, false);
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t u0 = zend_memory_usage(false), r0 = zend_memory_usage(true);
		char *p = emalloc(sizes[i]);
		CHECK_EQ(zend_memory_usage(false), u0 + true_size(sizes[i]));
		CHECK_EQ(zend_memory_usage(true), r0);
		efree(p);
		CHECK_EQ(zend_memory_usage(false), u0);
	}
	CHECK_EQ(zend_memory_usage(false), RESERVE_TRUE_SIZE);
	CHECK_EQ(zend_memory_usage(true), SEG);
	shutdown_memory_manager(true, false);
	check_baseline("after exact accounting");
}

static void test_persistent_across_requests(void)
{
	unsigned char *blob = pemalloc(4096, 1);
	char *name = pestrdup("persistent name", 1);
	unsigned *counters = pecalloc(8, sizeof *counters, 1);
	size_t bad = 0;

	for (size_t i = 0; i < 4096; i++)
		blob[i] = (unsigned char)(i * 13);
	for (unsigned round = 0; round < 5; round++) {
		busy_request(round);
		counters[round % 8]++;
		shutdown_memory_manager(round % 2 == 0, false);
		for (size_t i = 0; i < 4096; i++)
			bad += blob[i] != (unsigned char)(i * 13);
		check_baseline("after a request with persistent data");
	}
	CHECK_EQ(bad, 0);
	CHECK_STR_EQ(name, "persistent name");
	CHECK_EQ(counters[0] + counters[1] + counters[2] + counters[3] + counters[4], 5);
	blob = perealloc(blob, 100000, 1);
	CHECK_EQ(blob[4095], (unsigned char)(4095 * 13));
	pefree(blob, 1);
	pefree(name, 1);
	pefree(counters, 1);
}

static void test_request_shutdown_resets(void)
{
	busy_request(7);
	CHECK(zend_memory_usage(false) > (3u << 20));
	CHECK(zend_memory_peak_usage(false) >= zend_memory_usage(false));
	CHECK(zend_memory_peak_usage(true) >= zend_memory_usage(true));
	CHECK(segments() > 1);
	CHECK_EQ(zendmm_check_heap(NULL), 0);
	shutdown_memory_manager(true, false);
	check_baseline("after silent request shutdown");

	busy_request(8);
	shutdown_memory_manager(false, false);
	check_baseline("after non-silent request shutdown");

	/* an empty request */
	shutdown_memory_manager(true, false);
	check_baseline("after an empty request");
}

static int leaky_request(void *arg)
{
	(void)arg;
	busy_request(9);
	shutdown_memory_manager(false, false); /* release build: no leak report */
	return zend_memory_usage(false) == RESERVE_TRUE_SIZE ? 0 : 1;
}

static void test_non_silent_shutdown_is_quiet(void)
{
	th_child res;
	CHECK(th_run_child(&res, leaky_request, NULL) == 0);
	CHECK_EXIT(&res, 0);
	CHECK_STDERR(&res, "");
}

static void test_segment_give_back(void)
{
	static const size_t sizes[] = {1u << 20, 8u << 20, 300000, 262144, 5u << 20};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t u0 = zend_memory_usage(false), r0 = zend_memory_usage(true), s0 = segments();
		char *p = emalloc(sizes[i]);
		memset(p, 0x77, sizes[i]);
		CHECK_EQ(zend_memory_usage(true), r0 + dedicated_segment(sizes[i]));
		CHECK_EQ(zend_memory_usage(false), u0 + true_size(sizes[i]));
		CHECK_EQ(segments(), s0 + 1);
		efree(p);
		CHECK_EQ(zend_memory_usage(true), r0);
		CHECK_EQ(zend_memory_usage(false), u0);
		CHECK_EQ(segments(), s0);
	}
	CHECK_EQ(dedicated_segment(1u << 20), 1310720);
	CHECK_EQ(dedicated_segment(8u << 20), 8650752);

	/* Blocks that fill ordinary segments: the empty segments go back too. */
	{
		size_t r0 = zend_memory_usage(true);
		char *p[3];
		for (int i = 0; i < 3; i++)
			p[i] = emalloc(200000);
		CHECK_EQ(zend_memory_usage(true), r0 + 2 * SEG); /* the first fits next to the reserve */
		for (int i = 0; i < 3; i++)
			efree(p[i]);
		CHECK_EQ(zend_memory_usage(true), r0);
	}
	CHECK_EQ(zend_memory_usage(false), RESERVE_TRUE_SIZE);
	CHECK_EQ(zend_memory_usage(true), SEG);
	CHECK_EQ(segments(), 1);
	shutdown_memory_manager(true, false);
	check_baseline("after giving segments back");
}

static void test_peaks(void)
{
	char *p;

	shutdown_memory_manager(true, false);
	/* 5000 bytes: past the fastcache's largest size (4112 bytes), so
	 * freeing it does not park it there (the peak keeps counting cached
	 * blocks, as in PHP 5.3). */
	p = emalloc(5000);
	CHECK_EQ(zend_memory_peak_usage(false), RESERVE_TRUE_SIZE + true_size(5000));
	efree(p);
	CHECK_EQ(zend_memory_usage(false), RESERVE_TRUE_SIZE);
	CHECK_EQ(zend_memory_peak_usage(false), RESERVE_TRUE_SIZE + true_size(5000));
	zend_memory_reset_peak_usage();
	CHECK_EQ(zend_memory_peak_usage(false), RESERVE_TRUE_SIZE);
	CHECK_EQ(zend_memory_peak_usage(true), SEG);

	/* A small block freed into the fastcache leaves usage but stays in the
	 * peak, even after a reset. */
	p = emalloc(100);
	efree(p);
	zend_memory_reset_peak_usage();
	CHECK_EQ(zend_memory_usage(false), RESERVE_TRUE_SIZE);
	CHECK_EQ(zend_memory_peak_usage(false), RESERVE_TRUE_SIZE + true_size(100));
	CHECK_EQ(zend_mm_gc(zend_mm_get_heap()), true_size(100));
	zend_memory_reset_peak_usage();
	CHECK_EQ(zend_memory_peak_usage(false), RESERVE_TRUE_SIZE);

	p = emalloc(1u << 20);
	CHECK_EQ(zend_memory_peak_usage(true), SEG + 1310720);
	CHECK_EQ(zend_memory_peak_usage(false), RESERVE_TRUE_SIZE + true_size(1u << 20));
	zend_memory_reset_peak_usage(); /* peaks = current values, block still live */
	CHECK_EQ(zend_memory_peak_usage(true), SEG + 1310720);
	CHECK_EQ(zend_memory_peak_usage(false), RESERVE_TRUE_SIZE + true_size(1u << 20));
	efree(p);
	CHECK_EQ(zend_memory_usage(true), SEG);
	CHECK_EQ(zend_memory_peak_usage(true), SEG + 1310720);
	zend_memory_reset_peak_usage();
	CHECK_EQ(zend_memory_peak_usage(true), SEG);
	CHECK_EQ(zend_memory_peak_usage(false), RESERVE_TRUE_SIZE);

	/* Peaks never fall below the usage, and a request shutdown resets them. */
	p = emalloc(8u << 20);
	efree(p);
	p = emalloc(100);
	CHECK_EQ(zend_memory_peak_usage(true), SEG + dedicated_segment(8u << 20));
	CHECK(zend_memory_peak_usage(false) >= zend_memory_usage(false));
	shutdown_memory_manager(true, false);
	check_baseline("after peaks");
}

static void test_full_shutdown_and_restart(void)
{
	for (int i = 0; i < 3; i++) {
		char *keep = pestrdup("survives full shutdown", 1);
		busy_request((unsigned)i);
		shutdown_memory_manager(true, true);
		start_memory_manager();
		check_baseline("after full shutdown and restart");
		CHECK(is_zend_mm());
		busy_request((unsigned)i + 100);
		CHECK_EQ(zendmm_check_heap(NULL), 0);
		shutdown_memory_manager(false, false);
		check_baseline("after a request on the restarted manager");
		CHECK_STR_EQ(keep, "survives full shutdown");
		free(keep);
	}
}

static void test_many_blocks_request(void)
{
	/* 200 000 live small blocks, all released by one request shutdown. */
	for (int i = 0; i < 200000; i++)
		*(int *)emalloc(16 + (size_t)(i % 64) * 8) = i;
	CHECK(zend_memory_usage(false) > 200000u * 32);
	shutdown_memory_manager(true, false);
	check_baseline("after 200k blocks");
}

static void test_heap_object_lifecycle(void)
{
	zend_mm_heap *h = zend_mm_startup();
	zend_mm_heap *def = zend_mm_get_heap();
	zend_mm_heap *prev = zend_mm_set_heap(h);

	CHECK(prev == def);
	/* a heap object behaves like the default heap after start */
	check_baseline("on a heap object after zend_mm_startup");
	busy_request(3);
	zend_mm_shutdown(h, false, true);
	check_baseline("on a heap object after zend_mm_shutdown(h, false, true)");
	CHECK(zend_mm_set_heap(prev) == h);
	zend_mm_shutdown(h, true, true);
	check_baseline("on the default heap after the heap object is gone");
}

int main(void)
{
	start_memory_manager();
	RUN(test_start_baseline);
	RUN(test_exact_accounting);
	RUN(test_persistent_across_requests);
	RUN(test_request_shutdown_resets);
	RUN(test_non_silent_shutdown_is_quiet);
	RUN(test_segment_give_back);
	RUN(test_peaks);
	RUN(test_full_shutdown_and_restart);
	RUN(test_many_blocks_request);
	RUN(test_heap_object_lifecycle);
	shutdown_memory_manager(true, true);
	return th_report("test_lifecycle");
}
