/*
 * test_stress.c - many threads, one heap each (PHP's ZTS shape), every
 * block filled with a pattern that is checked at free (mimalloc's
 * test-stress, on the heap-object API).
 *
 * 8 threads x 20 rounds x 10,000 operations. Each thread makes its own heap
 * with zend_mm_startup() and uses only _zend_mm_alloc, _zend_mm_realloc and
 * _zend_mm_free on it. Sizes follow test-stress: 1..16 words; 1 % of them
 * x100, x1000 or x10000 (up to 1.25 MiB, which takes a dedicated segment).
 * Every word of a block holds `cookie ^ index`, the cookie made from the
 * block's address and the thread; the whole block is checked when it is
 * freed, and the kept prefix after a realloc. Persistent blocks (pemalloc:
 * libc underneath) go through a shared 1,000-slot transfer array under a
 * mutex, so other threads free them, often in later rounds.
 *
 * Threads are started afresh each round, as in test-stress; the heaps live
 * on. At the end of its round each thread checks its heap
 * (zendmm_check_heap, and usage equal to the reserve plus its live blocks),
 * frees half of its blocks, ends the request with zend_mm_shutdown(heap, 0,
 * 0) and checks that only the reserve is left. The PRNG is splitmix64
 * seeded from the thread and the round, so each thread's operations repeat
 * from run to run (which transfer blocks it meets depends on timing).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "zendmm_alloc.h"
#include "test_helper.h"

#define THREADS 8
#define ROUNDS 20
#define OPS 10000
#define SLOTS 1000          /* live request blocks per thread */
#define TRANSFER_SLOTS 1000 /* shared persistent blocks */
#define RESERVE_TRUE_SIZE ((size_t)8208)
#define BLOCK_HEADER ((size_t)8)
#define TIME_LIMIT_S 60.0
#define SHOWN_FAILURES 20

/* ---- splitmix64 ----------------------------------------------------------- */

static uint64_t next_random(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15u);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
	return z ^ (z >> 31);
}

static bool percent(uint64_t *r, unsigned p) { return next_random(r) % 100 < p; }

/* test-stress's alloc_items: 1 % of the blocks are large: x100, or x1000
 * (10 % of those), or x10000 (1 % of those). */
static size_t random_size(uint64_t *r)
{
	size_t words = (size_t)(next_random(r) % 16 + 1);
	if (percent(r, 1)) {
		if (percent(r, 1))
			words *= 10000;
		else if (percent(r, 10))
			words *= 1000;
		else
			words *= 100;
	}
	return words * sizeof(uintptr_t);
}

/* ---- blocks and their patterns ------------------------------------------- */

struct block {
	uintptr_t *p;
	size_t size;
	uintptr_t cookie;
	unsigned maker; /* the thread that filled it */
};

static atomic_ulong failures;
static atomic_ulong words_checked;
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;

static void fail(unsigned tid, const char *what, const void *p, size_t size, size_t at)
{
	if (atomic_fetch_add(&failures, 1) >= SHOWN_FAILURES)
		return;
	pthread_mutex_lock(&print_lock);
	printf("  thread %u: %s: block %p (%zu bytes) at byte %zu\n", tid, what, p, size, at);
	fflush(stdout);
	pthread_mutex_unlock(&print_lock);
}

static void fill(struct block *b, unsigned tid)
{
	size_t words = b->size / sizeof(uintptr_t);
	b->maker = tid;
	b->cookie = ((uintptr_t)b->p * 0x9E3779B97F4A7C15u) ^ ((uintptr_t)tid << 56) ^ 0x5A5A5A5A5A5A5A5Au;
	for (size_t i = 0; i < words; i++)
		b->p[i] = b->cookie ^ i;
}

/* Checks the first `size` bytes of b against its cookie. */
static void check_pattern(const struct block *b, size_t size, unsigned tid, const char *what)
{
	size_t words = size / sizeof(uintptr_t);
	for (size_t i = 0; i < words; i++) {
		if (b->p[i] != (b->cookie ^ i)) {
			fail(tid, what, b->p, b->size, i * sizeof(uintptr_t));
			return;
		}
	}
	atomic_fetch_add_explicit(&words_checked, words, memory_order_relaxed);
}

/* ---- the shared transfer array (persistent memory) --------------------- */

static struct block transfer[TRANSFER_SLOTS];
static pthread_mutex_t transfer_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_ulong transfers_freed_elsewhere;

static void transfer_swap(uint64_t *r, unsigned tid)
{
	struct block mine = {0, random_size(r), 0, tid}, theirs;
	size_t slot = (size_t)(next_random(r) % TRANSFER_SLOTS);

	mine.p = pemalloc(mine.size, 1);
	fill(&mine, tid);
	pthread_mutex_lock(&transfer_lock);
	theirs = transfer[slot];
	transfer[slot] = mine;
	pthread_mutex_unlock(&transfer_lock);
	if (theirs.p != NULL) {
		check_pattern(&theirs, theirs.size, tid, "persistent block changed in transfer");
		pefree(theirs.p, 1);
		if (theirs.maker != tid)
			atomic_fetch_add(&transfers_freed_elsewhere, 1);
	}
}

/* ---- one thread's round ---------------------------------------------------- */

struct worker {
	unsigned tid;
	unsigned round;
	zend_mm_heap *heap;
	struct block live[SLOTS];
	unsigned long ops, allocs, reallocs, frees, swaps, large;
};

static struct worker workers[THREADS];

static void release(struct worker *w, struct block *b, const char *what)
{
	check_pattern(b, b->size, w->tid, what);
	_zend_mm_free(w->heap, b->p);
	b->p = NULL;
	w->frees++;
}

static void place(struct worker *w, struct block *b, void *p, size_t size)
{
	if (p == NULL || (uintptr_t)p % 16 != 0) {
		fail(w->tid, p == NULL ? "allocation returned NULL" : "block not 16-byte aligned", p, size, 0);
		b->p = NULL;
		return;
	}
	b->p = p;
	b->size = size;
	w->large += size > 3072;
	fill(b, w->tid);
}

static void step(struct worker *w, uint64_t *r)
{
	unsigned op = (unsigned)(next_random(r) % 100);
	struct block *b = &w->live[next_random(r) % SLOTS];

	w->ops++;
	if (op < 45) {
		size_t size = random_size(r);
		if (b->p != NULL)
			release(w, b, "block changed before free");
		place(w, b, _zend_mm_alloc(w->heap, size), size);
		w->allocs++;
	} else if (op < 65) {
		size_t size = random_size(r);
		struct block old;
		if (b->p == NULL)
			return;
		check_pattern(b, b->size, w->tid, "block changed before realloc");
		old = *b;
		b->p = _zend_mm_realloc(w->heap, b->p, size);
		if (b->p == NULL) {
			fail(w->tid, "realloc returned NULL", old.p, old.size, 0);
			return;
		}
		check_pattern(b, size < old.size ? size : old.size, w->tid, "realloc lost contents");
		place(w, b, b->p, size);
		w->reallocs++;
	} else if (op < 95) {
		if (b->p != NULL)
			release(w, b, "block changed before free");
	} else {
		transfer_swap(r, w->tid);
		w->swaps++;
	}
}

static size_t usage_of(zend_mm_heap *heap)
{
	zendmm_heap_stats st;
	memset(&st, 0, sizeof st);
	st.size = sizeof st;
	return zendmm_stats(heap, &st) ? st.usage : (size_t)-1;
}

static void end_of_round(struct worker *w, uint64_t *r)
{
	size_t expected = RESERVE_TRUE_SIZE, problems, left;

	for (size_t i = 0; i < SLOTS; i++)
		if (w->live[i].p != NULL)
			expected += _zend_mm_block_size(w->heap, w->live[i].p) + BLOCK_HEADER;
	problems = zendmm_check_heap(w->heap);
	if (problems != 0)
		fail(w->tid, "zendmm_check_heap found problems", w->heap, problems, 0);
	if (usage_of(w->heap) != expected)
		fail(w->tid, "usage differs from the live blocks", w->heap, usage_of(w->heap), expected);
	/* Half the blocks are freed one by one; the request end forgets the rest. */
	for (size_t i = 0; i < SLOTS; i++)
		if (w->live[i].p != NULL && percent(r, 50))
			release(w, &w->live[i], "block changed before free");
	for (size_t i = 0; i < SLOTS; i++)
		if (w->live[i].p != NULL)
			check_pattern(&w->live[i], w->live[i].size, w->tid, "block changed before request end");
	zend_mm_shutdown(w->heap, false, false);
	memset(w->live, 0, sizeof w->live);
	left = usage_of(w->heap);
	if (left != RESERVE_TRUE_SIZE || zendmm_check_heap(w->heap) != 0)
		fail(w->tid, "more than the reserve left after the request end", w->heap, left, 0);
}

static void *run_round(void *arg)
{
	struct worker *w = arg;
	uint64_t r = 0x5EED000000000000u ^ ((uint64_t)w->round << 16) ^ w->tid;

	if (w->heap == NULL)
		w->heap = zend_mm_startup();
	for (unsigned i = 0; i < OPS; i++)
		step(w, &r);
	end_of_round(w, &r);
	return NULL;
}

/* ---- main ---------------------------------------------------------------- */

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void stress(void)
{
	pthread_t threads[THREADS];
	struct timespec t0;
	unsigned long ops = 0, allocs = 0, reallocs = 0, frees = 0, swaps = 0, large = 0, left = 0;
	double elapsed;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned round = 0; round < ROUNDS; round++) {
		for (unsigned t = 0; t < THREADS; t++) {
			workers[t].tid = t;
			workers[t].round = round;
			CHECK_EQ(pthread_create(&threads[t], NULL, run_round, &workers[t]), 0);
		}
		for (unsigned t = 0; t < THREADS; t++)
			CHECK_EQ(pthread_join(threads[t], NULL), 0);
	}
	elapsed = seconds_since(&t0);

	for (unsigned t = 0; t < THREADS; t++) {
		struct worker *w = &workers[t];
		ops += w->ops;
		allocs += w->allocs;
		reallocs += w->reallocs;
		frees += w->frees;
		swaps += w->swaps;
		large += w->large;
		CHECK(w->heap != NULL);
		CHECK_EQ(zendmm_check_heap(w->heap), 0);
		zend_mm_shutdown(w->heap, true, true);
	}
	for (size_t i = 0; i < TRANSFER_SLOTS; i++) {
		if (transfer[i].p != NULL) {
			check_pattern(&transfer[i], transfer[i].size, THREADS, "persistent block changed");
			pefree(transfer[i].p, 1);
			left++;
		}
	}
	printf("  %u threads x %u rounds: %lu operations (%lu allocs, %lu reallocs, %lu frees, "
	       "%lu blocks over 3072 bytes, %lu persistent blocks through the transfer array, %lu of "
	       "them freed by another thread, %lu left at the end), %lu words checked, in %.2f s\n",
	       THREADS, ROUNDS, ops, allocs, reallocs, frees, large, swaps,
	       (unsigned long)atomic_load(&transfers_freed_elsewhere), left,
	       (unsigned long)atomic_load(&words_checked), elapsed);
	CHECK_EQ(ops, (unsigned long)THREADS * ROUNDS * OPS);
	CHECK(large > 0);
	CHECK(atomic_load(&transfers_freed_elsewhere) > 0);
	CHECK_EQ(atomic_load(&failures), 0);
	CHECK(elapsed < TIME_LIMIT_S);
}

int main(void)
{
	RUN(stress);
	return th_report("test_stress");
}
