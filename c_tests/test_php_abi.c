/*
 * test_php_abi.c - the PHP 8.2 entry points beyond the core API: the bin
 * functions extensions call for constant sizes, the fallible family, custom
 * handlers, is_zend_ptr, zend_mm_gc, zend_mm_startup_ex storage, the hard
 * limit setting and USE_ZEND_ALLOC=0 (libc malloc, counted and limited).
 * Outside PHP, as here, a failing non-fallible call is a fatal error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zendmm_alloc.h"
#include "test_helper.h"

/* The bin entry points are exported but not in zendmm.h (they exist for
 * binaries built against PHP's headers): declare the ones used here. */
#define BIN(n) void *_emalloc_##n(void); void _efree_##n(void *ptr);
BIN(8) BIN(56) BIN(320) BIN(3072)
#undef BIN
void *_emalloc_large(size_t size);
void _efree_large(void *ptr, size_t size);
void *_emalloc_huge(size_t size);
void _efree_huge(void *ptr, size_t size);

static void test_bins_allocate_their_size_and_ignore_free_hints(void)
{
	void *a = _emalloc_8(), *b = _emalloc_56(), *c = _emalloc_320(), *d = _emalloc_3072();
	CHECK(_zend_mem_block_size(a) >= 8);
	CHECK(_zend_mem_block_size(b) >= 56);
	CHECK(_zend_mem_block_size(c) >= 320);
	CHECK(_zend_mem_block_size(d) >= 3072);
	memset(d, 0x5a, 3072);
	_efree_3072(d);
	_efree_320(c);
	/* A wrong size class is not trusted: the block's own tag decides. */
	_efree_8(b);
	_efree_56(a);
	void *l = _emalloc_large(100000), *h = _emalloc_huge(3 << 20);
	CHECK(_zend_mem_block_size(l) >= 100000 && _zend_mem_block_size(h) >= (3u << 20));
	_efree_large(l, 1);
	_efree_huge(h, 12345);
	CHECK_EQ(zendmm_check_heap(NULL), 0);
}

static void test_fallible_calls_return_null_at_the_limit(void)
{
	size_t before = zend_memory_usage(true);
	CHECK_EQ(zend_set_memory_limit(1 << 20), 0);
	CHECK(_femalloc(16 << 20) == NULL);
	CHECK(_safe_femalloc(1 << 20, 16, 0) == NULL);
	CHECK(_fecalloc(4 << 20, 2) == NULL);
	char *p = _femalloc(100);
	CHECK(p != NULL);
	strcpy(p, "kept");
	CHECK(_ferealloc(p, 32 << 20) == NULL);
	CHECK(_ferealloc2(p, 32 << 20, 4) == NULL);
	CHECK(_safe_ferealloc(p, 8 << 20, 4, 0) == NULL);
	CHECK_STR_EQ(p, "kept");

	CHECK(!zend_mm_is_fallible());
	zend_mm_set_fallible(true);
	CHECK(zend_mm_is_fallible());
	CHECK(_emalloc(16 << 20) == NULL);
	zend_mm_set_fallible(false);

	efree(p);
	CHECK_EQ(zend_memory_usage(true), before);
	CHECK_EQ(zendmm_check_heap(NULL), 0);
	CHECK_EQ(zend_set_memory_limit((size_t)1 << 40), 0);
}

static int n_malloc, n_free, n_realloc;
static void *count_malloc(size_t n) { n_malloc++; return malloc(n); }
static void count_free(void *p) { n_free++; free(p); }
static void *count_realloc(void *p, size_t n) { n_realloc++; return realloc(p, n); }

static void test_custom_handlers_route_and_reset(void)
{
	zend_mm_heap *heap = zend_mm_get_heap();
	zend_mm_malloc_fn m = NULL;
	zend_mm_free_fn f = NULL;
	zend_mm_realloc_fn r = NULL;

	CHECK(!zend_mm_is_custom_heap(heap));
	zend_mm_get_custom_handlers(heap, &m, &f, &r);
	CHECK(m == NULL && f == NULL && r == NULL);

	/* A cached block of each size below must not serve the routed heap. */
	efree(emalloc(sizeof("through the profiler")));
	efree(emalloc(100));
	zend_mm_set_custom_handlers(heap, count_malloc, count_free, count_realloc);
	CHECK(zend_mm_is_custom_heap(heap));
	CHECK(!is_zend_mm());
	zend_mm_get_custom_handlers(heap, &m, &f, &r);
	CHECK(m == count_malloc && f == count_free && r == count_realloc);

	char *s = estrdup("through the profiler");
	s = erealloc(s, 4000);
	char *z = ecalloc(10, 10);
	CHECK(z[0] == 0 && z[99] == 0);
	efree(z);
	efree(s);
	CHECK_EQ(n_malloc, 2);
	CHECK_EQ(n_realloc, 1);
	CHECK_EQ(n_free, 2);
	CHECK(!is_zend_ptr(s));

	zend_mm_set_custom_handlers(heap, NULL, NULL, NULL);
	CHECK(!zend_mm_is_custom_heap(heap));
	CHECK(is_zend_mm());
	efree(emalloc(10));
	CHECK_EQ(n_malloc, 2);
	CHECK_EQ(zendmm_check_heap(NULL), 0);
}

static void test_is_zend_ptr_is_exact(void)
{
	int on_stack = 0;
	char *small = emalloc(100);
	char *big = emalloc(1 << 20);
	void *libc_block = malloc(64);

	CHECK(is_zend_ptr(small));
	CHECK(is_zend_ptr(small + 50));
	CHECK(is_zend_ptr(small + 99));
	CHECK(is_zend_ptr(big + 500000));
	CHECK(!is_zend_ptr(small - 8));
	CHECK(!is_zend_ptr(&on_stack));
	CHECK(!is_zend_ptr(libc_block));
	CHECK(!is_zend_ptr(NULL));
	efree(small);
	CHECK(!is_zend_ptr(small));
	efree(big);
	CHECK(!is_zend_ptr(big + 500000));
	free(libc_block);
}

static void test_gc_flushes_the_fastcache(void)
{
	void *p[100];
	for (int i = 0; i < 100; i++)
		p[i] = emalloc(200);
	for (int i = 0; i < 100; i++)
		efree(p[i]);
	size_t cached = th_stats(NULL).cached_bytes;
	CHECK(cached >= 100 * 208); /* 200 bytes and the header */
	CHECK_EQ(zend_mm_gc(zend_mm_get_heap()), cached);
	CHECK_EQ(th_stats(NULL).cached_bytes, 0);
	CHECK_EQ(zend_mm_gc(zend_mm_get_heap()), 0);
	CHECK_EQ(zendmm_check_heap(NULL), 0);
}

struct arena_data {
	int magic;
	int chunks;
	size_t bytes;
	size_t last_alignment;
};

static void *arena_alloc(zend_mm_storage *s, size_t size, size_t alignment)
{
	struct arena_data *d = s->data;
	void *p = NULL;
	if (posix_memalign(&p, alignment, size) != 0)
		return NULL;
	d->chunks++;
	d->bytes += size;
	d->last_alignment = alignment;
	return p;
}

static void arena_free(zend_mm_storage *s, void *chunk, size_t size)
{
	struct arena_data *d = s->data;
	d->chunks--;
	d->bytes -= size;
	free(chunk);
}

static void test_startup_ex_takes_segments_from_the_handlers(void)
{
	static const zend_mm_handlers handlers = {arena_alloc, arena_free, NULL, NULL};
	struct arena_data data = {0x5eed, 0, 0, 0};
	zend_mm_heap *heap = zend_mm_startup_ex(&handlers, &data, sizeof data);
	CHECK(heap != NULL);
	zend_mm_storage *storage = zend_mm_get_storage(heap);
	CHECK(storage != NULL);
	if (!storage)
		return;
	struct arena_data *copy = storage->data;
	CHECK(copy != &data);
	CHECK_EQ(copy->magic, 0x5eed);
	CHECK_EQ(copy->chunks, 1); /* the reserve's segment */
	CHECK_EQ(copy->last_alignment, 262144);

	char *p = _zend_mm_alloc(heap, 3 << 20);
	memset(p, 1, 3 << 20);
	CHECK_EQ(copy->chunks, 2);
	p = _zend_mm_realloc(heap, p, 5 << 20); /* no extend handler: copied */
	CHECK(p[(3 << 20) - 1] == 1);
	CHECK_EQ(copy->chunks, 2);
	_zend_mm_free(heap, p);
	CHECK_EQ(copy->chunks, 1);
	CHECK(zend_mm_get_storage(zend_mm_get_heap()) == NULL);
	CHECK_EQ(zendmm_check_heap(heap), 0);
	zend_mm_shutdown(heap, true, true);
	CHECK_EQ(data.chunks, 0); /* the caller's data was copied, never touched */
	CHECK(zend_mm_startup_ex(NULL, NULL, 0) == NULL);
}

static void test_hard_limit_percent_accepts_minus_one_or_100_and_up(void)
{
	CHECK_EQ(zend_set_memory_hard_limit_percent(50), -1);
	CHECK_EQ(zend_set_memory_hard_limit_percent(99), -1);
	CHECK_EQ(zend_set_memory_hard_limit_percent(-2), -1);
	CHECK_EQ(zend_set_memory_hard_limit_percent(100), 0);
	CHECK_EQ(zend_set_memory_hard_limit_percent(250), 0);
	CHECK_EQ(zend_set_memory_hard_limit_percent(-1), 0);
	CHECK(!zend_mm_max_allocs_hit());
	CHECK(!zend_alloc_in_memory_limit_error_reporting());
}

static int tracked_counts(void *arg)
{
	(void)arg;
	int bad = 0;
	bad |= is_zend_mm();
	bad |= zend_memory_usage(false) != 0;
	char *p = emalloc(1000);
	bad |= zend_memory_usage(false) < 1000;
	bad |= is_zend_ptr(p);
	p = erealloc(p, 5000);
	bad |= zend_memory_usage(false) < 5000;
	efree(p);
	bad |= zend_memory_usage(false) != 0;
	bad |= zend_set_memory_limit(1 << 20) != 0;
	bad |= _femalloc(2 << 20) != NULL;
	shutdown_memory_manager(true, false);
	bad |= zend_memory_usage(true) != 0;
	if (bad)
		return 1;
	fprintf(stderr, "ok\n");
	emalloc(2 << 20); /* past the limit: fatal */
	return 2;
}

static void test_use_zend_alloc_0_counts_and_limits_libc_memory(void)
{
	th_child res;
	th_env env[2] = {{"USE_ZEND_ALLOC", "0"}, {NULL, NULL}};
	CHECK(th_run_child_env(&res, env, tracked_counts, NULL) == 0);
	CHECK_EXIT(&res, 255);
	CHECK_STDERR(&res, "ok\nPHP Fatal error:  Allowed memory size of 1048576 bytes exhausted "
	                   "(tried to allocate 2097152 bytes)\n");

	th_env bad[2] = {{"USE_ZEND_ALLOC", "off"}, {NULL, NULL}};
	CHECK(th_run_child_env(&res, bad, tracked_counts, NULL) == 0);
	CHECK_EXIT(&res, 255);
	CHECK_STDERR(&res, "USE_ZEND_ALLOC must be an integer (0 disables zendmm's heap), got 'off'\n");
}

int main(void)
{
	start_memory_manager();
	RUN(test_bins_allocate_their_size_and_ignore_free_hints);
	RUN(test_fallible_calls_return_null_at_the_limit);
	RUN(test_custom_handlers_route_and_reset);
	RUN(test_is_zend_ptr_is_exact);
	RUN(test_gc_flushes_the_fastcache);
	RUN(test_startup_ex_takes_segments_from_the_handlers);
	RUN(test_hard_limit_percent_accepts_minus_one_or_100_and_up);
	RUN(test_use_zend_alloc_0_counts_and_limits_libc_memory);
	return th_report("test_php_abi");
}
