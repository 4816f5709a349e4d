/*
 * test_sweep.c - sizes near SIZE_MAX and above PTRDIFF_MAX through every
 * request allocator entry point (glibc's tst-malloc-too-large, with PHP's
 * fatal errors instead of ENOMEM).
 *
 * Sizes: 2^14 just below SIZE_MAX, 2^14 just above PTRDIFF_MAX, the 512
 * around the largest size zendmm can even try to serve, and high-bit
 * patterns from 2^48 up. Entry points: emalloc, erealloc of a live small
 * block and of a live block that owns its segment, ecalloc and
 * safe_emalloc with nmemb * size (+ offset) split by factors 1, 2, 4 and 8
 * in both orders (plus splits that overflow by exactly one), and
 * safe_erealloc. Each call runs with an error handler that longjmps out,
 * and again through the fallible family (_femalloc & co.).
 *
 * For every attempt: the handler ran once, with the right kind and PHP's
 * exact message, computed here from the rules README's "Fatal errors" table
 * states (fallible calls: NULL and no handler call for the limit and
 * out-of-memory cases); nothing was handed out (usage, peak and real usage
 * unchanged, except that a fatal error frees the 8 KiB reserve); the live
 * blocks kept their size and contents; a small emalloc/efree still works
 * and zendmm_check_heap() then finds nothing. After a fatal error the
 * request is ended with shutdown_memory_manager(1, 0), as PHP's bailout does.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "zendmm_alloc.h"
#include "test_helper.h"

#if defined(__SANITIZE_ADDRESS__)
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }
#endif

#define SEG ((size_t)262144)
#define BLOCK_HEADER ((size_t)8)
#define SEGMENT_OVERHEAD ((size_t)48) /* segment header + first block's header */
/* A request n can only be tried when n + OVERHEAD fits a size_t; past that,
 * "Possible integer overflow in memory allocation (n + OVERHEAD)". */
#define OVERHEAD (BLOCK_HEADER + SEGMENT_OVERHEAD + SEG)
#define RESERVE_TRUE_SIZE ((size_t)8208)
#define SMALL_LEN ((size_t)64)
#define LARGE_LEN ((size_t)300000) /* owns a 512 KiB segment */
/* The full sweep runs in the plain build; under valgrind or ASan (whose
 * malloc takes milliseconds to refuse a huge size) a sample of it. */
#define FULL_SWEEP ((size_t)1 << 14)
#define SWEEP (th_on_tool() ? (size_t)1 << 8 : FULL_SWEEP)
#define SHOWN_FAILURES 20

/* ---- the error handler ----------------------------------------------------- */


/* ---- what each call must end in ------------------------------------------- */

enum entry { EMALLOC, EREALLOC_SMALL, EREALLOC_LARGE, ECALLOC, SAFE_EMALLOC, SAFE_EREALLOC };

static const char *const entry_names[] = {
	"emalloc", "erealloc(small)", "erealloc(large)", "ecalloc", "safe_emalloc", "safe_erealloc",
};

struct call {
	enum entry how;
	size_t a, b, c; /* emalloc/erealloc: size in a; ecalloc: a * b; safe_*: a * b + c */
};

struct outcome {
	int kind; /* a zendmm_error_kind, or 0: the fallible call returns NULL quietly */
	char text[256];
};

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

/* Segment bytes a block of n bytes (n <= SIZE_MAX - OVERHEAD) needs: one
 * regular segment, or a dedicated one rounded up to segments. */
static size_t segment_for(size_t n)
{
	size_t ts = n < 24 ? 32 : round_up(n + BLOCK_HEADER, 16);
	return ts > SEG - SEGMENT_OVERHEAD ? round_up(ts + SEGMENT_OVERHEAD, SEG) : SEG;
}

/* The figures that decide an outcome and show whether anything was handed
 * out (zendmm_stats would walk the free lists on every attempt). */
struct figures {
	size_t limit, usage, peak, real_usage;
};

/* memory_limit, read again by set_limit() whenever it changes */
static size_t heap_limit;

static struct figures figures_now(void)
{
	return (struct figures){heap_limit, zend_memory_usage(false), zend_memory_peak_usage(false),
	                        zend_memory_usage(true)};
}

/* Asking for n bytes (growing a segment of `grown_from` bytes when the
 * block owns it) on a heap in state st. */
static void expect_request(size_t n, size_t grown_from, const struct figures *st,
                           struct outcome *o)
{
	size_t tried;

	if (n > SIZE_MAX - OVERHEAD) {
		o->kind = ZENDMM_ERROR_SIZE_OVERFLOW;
		snprintf(o->text, sizeof o->text,
		         "Possible integer overflow in memory allocation (%zu + %zu)", n, OVERHEAD);
		return;
	}
	tried = segment_for(n) - grown_from;
	if (tried > st->limit - st->real_usage) {
		o->kind = ZENDMM_ERROR_MEMORY_LIMIT;
		snprintf(o->text, sizeof o->text,
		         "Allowed memory size of %zu bytes exhausted (tried to allocate %zu bytes)",
		         st->limit, tried);
	} else {
		o->kind = ZENDMM_ERROR_OUT_OF_MEMORY;
		snprintf(o->text, sizeof o->text,
		         "Out of memory (allocated %zu bytes) (tried to allocate %zu bytes)",
		         st->real_usage, tried);
	}
}

static void expect(const struct call *c, bool fallible, const struct figures *st,
                   struct outcome *o)
{
	size_t total, grown_from = 0;

	switch (c->how) {
	case EMALLOC:
	case EREALLOC_SMALL:
		total = c->a;
		break;
	case EREALLOC_LARGE:
		total = c->a;
		grown_from = segment_for(LARGE_LEN);
		break;
	default: {
		size_t offset = c->how == ECALLOC ? 0 : c->c;
		if (__builtin_mul_overflow(c->a, c->b, &total) ||
		    __builtin_add_overflow(total, offset, &total)) {
			o->kind = ZENDMM_ERROR_SIZE_OVERFLOW;
			snprintf(o->text, sizeof o->text,
			         "Possible integer overflow in memory allocation (%zu * %zu + %zu)",
			         c->a, c->b, offset);
			return;
		}
	}
	}
	expect_request(total, grown_from, st, o);
	if (fallible && o->kind != ZENDMM_ERROR_SIZE_OVERFLOW) {
		o->kind = 0;
		o->text[0] = '\0';
	}
}

/* ---- one attempt ---------------------------------------------------------- */

static unsigned char *small_block;
static unsigned char *large_block;
static unsigned long attempts, fatal_attempts, failures;

/* A pattern in the first and last EDGE bytes of each live block (all of a
 * small one), copied from and compared with one reference. */
#define EDGE ((size_t)512)
static unsigned char reference[2 * EDGE];

static void fill(unsigned char *p, size_t len)
{
	if (len <= 2 * EDGE) {
		memcpy(p, reference, len);
	} else {
		memcpy(p, reference, EDGE);
		memcpy(p + len - EDGE, reference + EDGE, EDGE);
	}
}

static bool intact(const unsigned char *p, size_t len)
{
	if (len <= 2 * EDGE)
		return memcmp(p, reference, len) == 0;
	return memcmp(p, reference, EDGE) == 0 && memcmp(p + len - EDGE, reference + EDGE, EDGE) == 0;
}

static void start_request(void)
{
	small_block = emalloc(SMALL_LEN);
	fill(small_block, SMALL_LEN);
	large_block = emalloc(LARGE_LEN);
	fill(large_block, LARGE_LEN);
}

static void *invoke(const struct call *c, bool fallible)
{
	switch (c->how) {
	case EMALLOC:
		return fallible ? _femalloc(c->a) : emalloc(c->a);
	case EREALLOC_SMALL:
		return fallible ? _ferealloc(small_block, c->a) : erealloc(small_block, c->a);
	case EREALLOC_LARGE:
		return fallible ? _ferealloc(large_block, c->a) : erealloc(large_block, c->a);
	case ECALLOC:
		return fallible ? _fecalloc(c->a, c->b) : ecalloc(c->a, c->b);
	case SAFE_EMALLOC:
		return fallible ? _safe_femalloc(c->a, c->b, c->c) : safe_emalloc(c->a, c->b, c->c);
	default:
		return fallible ? _safe_ferealloc(small_block, c->a, c->b, c->c)
		                : safe_erealloc(small_block, c->a, c->b, c->c);
	}
}

static void fail(const struct call *c, bool fallible, const char *what, const struct outcome *want)
{
	failures++;
	if (failures > SHOWN_FAILURES)
		return;
	printf("  %s%s(%zu, %zu, %zu): %s\n", fallible ? "fallible " : "", entry_names[c->how],
	       c->a, c->b, c->c, what);
	printf("      handler calls %d, kind %d, message \"%s\"\n      expected kind %d, \"%s\"\n",
	       TH_BAIL.calls, TH_BAIL.kind, TH_BAIL.calls ? TH_BAIL.msg : "", want->kind, want->text);
	fflush(stdout);
}

static void attempt(const struct call *c, bool fallible)
{
	struct figures before = figures_now(), after;
	size_t small_size = zend_mem_block_size(small_block);
	size_t large_size = zend_mem_block_size(large_block);
	struct outcome want;
	void *volatile got = NULL;
	bool fatal;

	expect(c, fallible, &before, &want);
	TH_BAIL.calls = 0;
	TH_BAIL.kind = 0;
	attempts++;
	if (setjmp(TH_BAIL.jump) == 0)
		got = invoke(c, fallible);
	fatal = TH_BAIL.calls > 0;
	fatal_attempts += fatal;
	after = figures_now();

	if (TH_BAIL.calls != (want.kind != 0) || got != NULL)
		fail(c, fallible, got != NULL ? "returned a block" : "wrong number of handler calls", &want);
	else if (fatal && (TH_BAIL.kind != want.kind || strcmp(TH_BAIL.msg, want.text) != 0))
		fail(c, fallible, "wrong error", &want);
	else if (after.usage != before.usage - (fatal ? RESERVE_TRUE_SIZE : 0) ||
	         after.peak != before.peak || after.real_usage != before.real_usage)
		fail(c, fallible, "something was handed out", &want);
	else if (zend_mem_block_size(small_block) != small_size || !intact(small_block, SMALL_LEN) ||
	         zend_mem_block_size(large_block) != large_size || !intact(large_block, LARGE_LEN))
		fail(c, fallible, "a live block changed", &want);
	else {
		/* glibc's "a small malloc/free after each attempt", then the walk
		 * over every segment, block, free list and the cache */
		char *p = emalloc(24);
		memset(p, 0x5a, 24);
		efree(p);
		if (zendmm_check_heap(NULL) != 0)
			fail(c, fallible, "zendmm_check_heap found problems", &want);
	}

	if (fatal) {
		/* PHP's bailout ends the request; a second error before that exits. */
		shutdown_memory_manager(1, 0);
		start_request();
	}
}

/* Every entry point for a total of n bytes. */
static void sweep_size(size_t n)
{
	struct call c;

	for (int fallible = 0; fallible < 2; fallible++) {
		c = (struct call){EMALLOC, n, 0, 0};
		attempt(&c, fallible);
		c.how = EREALLOC_SMALL;
		attempt(&c, fallible);
		c.how = EREALLOC_LARGE;
		attempt(&c, fallible);
		for (size_t f = 1; f <= 8; f *= 2) {
			size_t q = n / f, r = n % f;
			/* nmemb * size <= n, both orders */
			c = (struct call){ECALLOC, q, f, 0};
			attempt(&c, fallible);
			c = (struct call){ECALLOC, f, q, 0};
			attempt(&c, fallible);
			/* exactly n, both orders */
			c = (struct call){SAFE_EMALLOC, q, f, r};
			attempt(&c, fallible);
			c = (struct call){SAFE_EMALLOC, f, q, r};
			attempt(&c, fallible);
			/* one more than SIZE_MAX through the offset */
			c = (struct call){SAFE_EMALLOC, q, f, r + (SIZE_MAX - n) + 1};
			if (r + (SIZE_MAX - n) + 1 != 0)
				attempt(&c, fallible);
			c = (struct call){SAFE_EREALLOC, f, q, r};
			attempt(&c, fallible);
			if (f > 1) {
				/* the multiplication itself overflows (n > PTRDIFF_MAX) */
				c = (struct call){ECALLOC, f, n, 0};
				attempt(&c, fallible);
				c = (struct call){ECALLOC, n, f, 0};
				attempt(&c, fallible);
			}
		}
	}
}

static void set_limit(size_t limit)
{
	shutdown_memory_manager(1, 0);
	CHECK_EQ(zend_set_memory_limit(limit), 0);
	heap_limit = th_stats(NULL).limit;
	start_request();
}

static void report_group(const char *what, unsigned long before_failures)
{
	printf("  %s: %lu attempts so far (%lu fatal), %lu failures\n", what, attempts, fatal_attempts,
	       failures - before_failures);
	CHECK_EQ(failures - before_failures, 0);
}

/* ---- the groups ----------------------------------------------------------- */

static void below_size_max(void)
{
	unsigned long f0 = failures;
	for (size_t i = 0; i < SWEEP; i++)
		sweep_size(SIZE_MAX - i);
	report_group("2^14 sizes below SIZE_MAX", f0);
}

static void above_ptrdiff_max(void)
{
	unsigned long f0 = failures;
	set_limit((size_t)128 << 20);
	for (size_t i = 0; i < SWEEP; i++)
		sweep_size((size_t)PTRDIFF_MAX + 1 + i);
	report_group("2^14 sizes above PTRDIFF_MAX (limit 128 MiB)", f0);
}

/* The largest size that is tried at all is SIZE_MAX - OVERHEAD. */
static void around_the_overflow_boundary(void)
{
	unsigned long f0 = failures;
	size_t first = SIZE_MAX - OVERHEAD - 255;
	for (size_t i = 0; i < 512; i++)
		sweep_size(first + i);
	report_group("512 sizes around SIZE_MAX - OVERHEAD", f0);
}

/* Powers of two from 2^48 (no address space holds them: the storage says
 * no) and the top 1..16 bits set, under the default limit and the largest
 * one PHP allows. */
static void high_bit_patterns(void)
{
	size_t limits[2] = {(size_t)1 << 62, (size_t)INT64_MAX};
	unsigned long f0 = failures;

	for (int l = 0; l < 2; l++) {
		set_limit(limits[l]);
		CHECK_EQ(th_stats(NULL).limit, limits[l]);
		for (unsigned b = 48; b < 64; b++) {
			size_t p = (size_t)1 << b;
			sweep_size(p);
			sweep_size(p - 1);
			sweep_size(p | (p - 1));
			sweep_size(p | 0x5555555555555555u >> (64 - b));
		}
		for (unsigned k = 1; k <= 16; k++)
			sweep_size(~(SIZE_MAX >> k));
	}
	report_group("high-bit patterns (limits 2^62 and ZEND_LONG_MAX)", f0);
}

/* The figures the sweep depends on, read from the library, so a layout
 * change fails here first and plainly. */
static void premises(void)
{
	zendmm_heap_stats st = th_stats(NULL);
	CHECK_EQ(st.usage, RESERVE_TRUE_SIZE + round_up(SMALL_LEN + BLOCK_HEADER, 16) +
	                       round_up(LARGE_LEN + BLOCK_HEADER, 16));
	CHECK_EQ(st.real_usage, SEG + segment_for(LARGE_LEN));
	CHECK_EQ(segment_for(LARGE_LEN), 2 * SEG);
	CHECK_EQ(st.limit, (size_t)1 << 62);
}

int main(void)
{
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < sizeof reference; i++)
		reference[i] = (unsigned char)(i * 131 + 7);
	start_memory_manager();
	zendmm_set_error_handler(th_bail);
	start_request();
	heap_limit = th_stats(NULL).limit;
	RUN(premises);
	RUN(below_size_max);
	RUN(above_ptrdiff_max);
	set_limit((size_t)1 << 62);
	RUN(around_the_overflow_boundary);
	RUN(high_bit_patterns);
	zendmm_set_error_handler(NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%lu attempts (%lu fatal errors caught) in %.2f s\n", attempts, fatal_attempts,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	/* 66 attempts a size: 33 entry-point calls, each plain and fallible */
	CHECK(attempts > 2 * SWEEP * 66);
	return th_report("test_sweep");
}
