/* Heap protection: every corruption a C extension can cause is reported as
 * PHP's "zend_mm_heap corrupted" plus a line naming the failed check, the
 * pointer, the block size and the segment; then the process aborts unless
 * the application's handler takes over. Each case runs in a forked child
 * and its exact stderr is asserted (random parts matched as hex).
 */
#include "test_helper.h"
#include "zendmm_alloc.h"

#include <ctype.h>
#include <signal.h>

#define SEGMENT 262144

/* Matches text against a pattern where "%x" stands for any 0x-prefixed hex
 * number. */
static int matches(const char *text, const char *pattern)
{
	while (*pattern) {
		if (pattern[0] == '%' && pattern[1] == 'x') {
			if (text[0] != '0' || text[1] != 'x' || !isxdigit((unsigned char)text[2]))
				return 0;
			text += 2;
			while (isxdigit((unsigned char)*text))
				text++;
			pattern += 2;
			continue;
		}
		if (*text++ != *pattern++)
			return 0;
	}
	return *text == '\0';
}

#define CHECK_MATCH(res, pattern)                                               \
	do {                                                                        \
		if (!CHECK(matches((res)->err, (pattern)))) {                           \
			printf("      expected: %s", (pattern));                             \
			th_describe(res);                                                   \
		}                                                                       \
	} while (0)

/* fn(arg) in a child started with env must abort with exactly the report
 * pattern describes. */
static void expect_report(const th_env *env, th_child_fn fn, void *arg, const char *pattern)
{
	th_child res;
	th_run_child_env(&res, env, fn, arg);
	CHECK_SIGNAL(&res, SIGABRT);
	CHECK_MATCH(&res, pattern);
}

static uint64_t rng_state;
static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* ---- double free -------------------------------------------------------- */

static int child_double_free_small(void *arg)
{
	(void)arg;
	char *p = emalloc(40);
	efree(p);
	efree(p);
	return 0;
}

static const char double_free_of_48_bytes[] =
	"zend_mm_heap corrupted\n"
	"efree: block is already in the fastcache (double free) "
	"(pointer %x, block size 48, segment %x of 262144 bytes)\n";

static void test_double_free_of_a_cached_block(void)
{
	SKIP_UNDER_TOOLS("the tool reports these misuses before zendmm can");
	expect_report(NULL, child_double_free_small, NULL, double_free_of_48_bytes);
}

/* Cached blocks carry their mark with protection off too (the flush walk
 * finds them by it), so the second free is named the same way. */
static void test_double_free_of_a_cached_block_without_protection(void)
{
	static const th_env off[] = {{"ZENDMM_PROTECT", "0"}, {NULL, NULL}};
	SKIP_UNDER_TOOLS("the tool reports these misuses before zendmm can");
	expect_report(off, child_double_free_small, NULL, double_free_of_48_bytes);
}

static int child_double_free_large(void *arg)
{
	(void)arg;
	char *keep = emalloc(100); /* neighbours stay used: no coalescing */
	char *p = emalloc(5000);
	char *after = emalloc(100);
	efree(p);
	efree(p);
	efree(keep);
	efree(after);
	return 0;
}

static void test_double_free_of_a_large_block(void)
{
	SKIP_UNDER_TOOLS("the tool reports these misuses before zendmm can");
	expect_report(NULL, child_double_free_large, NULL,
	              "zend_mm_heap corrupted\n"
	                  "efree: block points at a free block (freed twice?) "
	                  "(pointer %x, block size 5008, segment %x of 262144 bytes)\n");
}

/* A heap of 256 MiB or more stacks freed blocks of 4.5-144 KiB by size
 * class, still tagged used, as the fastcache does (src/large_cache.rs): a
 * request rounds up to its class, and a second free is named the same way.
 * One 512 MiB segment makes the heap big from its first block on. */
static int child_double_free_in_a_big_heap(void *arg)
{
	(void)arg;
	char *keep = emalloc(100);
	char *p = emalloc(5000);
	if (zend_mem_block_size(p) != 5120 - 8) {
		fprintf(stderr, "5000 bytes took a block of %zu usable bytes\n", zend_mem_block_size(p));
		return 1;
	}
	efree(p);
	if (emalloc(4700) != p) {
		fprintf(stderr, "a request of the same class did not take the stacked block\n");
		return 1;
	}
	efree(p);
	efree(p);
	efree(keep);
	return 0;
}

static void test_double_free_in_a_big_heap(void)
{
	static const th_env big[] = {{"ZEND_MM_SEG_SIZE", "512M"}, {NULL, NULL}};
	SKIP_UNDER_TOOLS("the tool reports these misuses before zendmm can");
	expect_report(big, child_double_free_in_a_big_heap, NULL,
	              "zend_mm_heap corrupted\n"
	                  "efree: block is already in the fastcache (double free) "
	                  "(pointer %x, block size 5120, segment %x of 536870912 bytes)\n");
}

/* ---- foreign pointers --------------------------------------------------- */

static int child_free_stack(void *arg)
{
	(void)arg;
	_Alignas(16) char buf[64];
	memset(buf, 0, sizeof buf);
	efree(buf + 32);
	return 0;
}

static int child_free_malloc(void *arg)
{
	(void)arg;
	char *p = malloc(24);
	memset(p, 'x', 24);
	efree(p);
	return 0;
}

static int child_free_mid_block(void *arg)
{
	(void)arg;
	char *p = ecalloc(1, 200);
	efree(p + 64);
	return 0;
}

static void test_foreign_pointers_are_rejected(void)
{
	SKIP_UNDER_TOOLS("the tool reports these misuses before zendmm can");
	th_child res;

	expect_report(NULL, child_free_stack, NULL,
	              "zend_mm_heap corrupted\n"
	                  "efree: block has no block header before it (a pointer zendmm did not hand out?) "
	                  "(pointer %x, block size 0, in no segment reachable from it)\n");

	th_run_child_env(&res, NULL, child_free_malloc, NULL);
	CHECK_SIGNAL(&res, SIGABRT);
	CHECK_PREFIX(res.err, "zend_mm_heap corrupted\nefree: block ");
	CHECK(strstr(res.err, "in no segment reachable from it)\n") != NULL);

	expect_report(NULL, child_free_mid_block, NULL,
	              "zend_mm_heap corrupted\n"
	                  "efree: block has no block header before it (a pointer zendmm did not hand out?) "
	                  "(pointer %x, block size 0, in no segment reachable from it)\n");
}

static int child_free_after_shutdown(void *arg)
{
	(void)arg;
	char *ps[8];
	for (int i = 0; i < 8; i++)
		ps[i] = emalloc(100);
	shutdown_memory_manager(1, 0); /* request ends; the heap lives on */
	efree(ps[5]);
	return 0;
}

static void test_free_after_request_shutdown(void)
{
	SKIP_UNDER_TOOLS("the tool reports these misuses before zendmm can");
	expect_report(NULL, child_free_after_shutdown, NULL,
	              "zend_mm_heap corrupted\n"
	                  "efree: block belongs to a request that has ended "
	                  "(pointer %x, block size 112, segment %x of 262144 bytes)\n");
}

/* ---- overflow past the end ---------------------------------------------- */

typedef struct overflow_case {
	const char *kind;
	size_t min, max; /* request sizes */
	int bytes;       /* 1 or 8 bytes written past the usable size */
	uint64_t seed;
} overflow_case;

static int child_overflow(void *arg)
{
	const overflow_case *c = arg;
	size_t size;
	unsigned char *p, *q;
	uint64_t before, after;
	size_t usable;

	rng_state = c->seed;
	size = c->min + rng() % (c->max - c->min + 1);
	q = emalloc(64); /* a used neighbour before, as in a real heap */
	p = emalloc(size);
	usable = zend_mem_block_size(p);
	memcpy(&before, p + usable, 8);
	if (c->bytes == 1) {
		unsigned char mask = (unsigned char)(1 + rng() % 255);
		p[usable] ^= mask;
	} else {
		uint64_t v;
		do
			v = rng();
		while ((uint32_t)v == (uint32_t)before);
		memcpy(p + usable, &v, 8);
	}
	memcpy(&after, p + usable, 8);
	/* The expected text needs the block size and the changed bits of the
	 * next block's 32-bit copy of this block's tag (the first 4 bytes past
	 * the end): send them through stderr's first line, before the report. */
	fprintf(stderr, "size=%zu diff=%#llx\n", usable + 8,
	        (unsigned long long)((before ^ after) & 0xffffffffu));
	efree(p);
	efree(q);
	return 0;
}

static void test_overflow_is_caught_at_free(void)
{
	SKIP_UNDER_TOOLS("the tool reports these misuses before zendmm can");
	static const struct {
		const char *kind;
		size_t min, max;
		const char *segment;
	} classes[] = {
		{"small", 1, 1000, "segment %x of 262144 bytes"},
		{"large", 1100, 200000, "segment %x of 262144 bytes"},
		{"dedicated", 300000, 3000000, "segment %x of %d bytes"},
	};
	int caught = 0, runs = 0;

	for (size_t k = 0; k < sizeof classes / sizeof classes[0]; k++) {
		for (int bytes = 1; bytes <= 8; bytes += 7) {
			for (uint64_t seed = 1; seed <= 16; seed++) {
				overflow_case c = {classes[k].kind, classes[k].min, classes[k].max, bytes, seed * 7919 + k};
				th_child res;
				char first[128], pat[512];
				size_t bsize = 0;
				unsigned long long diff = 0;

				th_run_child_env(&res, NULL, child_overflow, &c);
				runs++;
				if (sscanf(res.err, "size=%zu diff=%llx\n", &bsize, &diff) != 2) {
					CHECK(!"child printed its block size");
					th_describe(&res);
					continue;
				}
				snprintf(first, sizeof first, "size=%zu diff=%#llx\n", bsize, diff);
				snprintf(pat, sizeof pat,
				         "%szend_mm_heap corrupted\n"
				         "efree: block the boundary tag after the block is overwritten "
				         "(a write past its end?); bits changed %#llx "
				         "(pointer %%x, block size %zu, ",
				         first, diff, bsize);
				strcat(pat, k == 2 ? "segment %x of " : classes[k].segment);
				if (k == 2) {
					/* the dedicated segment's size is a multiple of 256 KiB */
					const char *s = strstr(res.err, "of ");
					char num[32] = "";
					if (s != NULL)
						sscanf(s + 3, "%31[0-9]", num);
					strcat(pat, num);
					strcat(pat, " bytes");
					CHECK(atol(num) % SEGMENT == 0 && (size_t)atol(num) > bsize);
				}
				strcat(pat, ")\n");
				if (res.signaled && res.sig == SIGABRT && matches(res.err, pat))
					caught++;
				else {
					printf("      %s, %d byte(s), seed %llu: expected %s", classes[k].kind, bytes,
					       (unsigned long long)seed, pat);
					th_describe(&res);
				}
			}
		}
	}
	CHECK_EQ(caught, runs);
	CHECK_EQ(runs, 3 * 2 * 16);
}

/* ---- forged links ------------------------------------------------------- */

static int child_forged_cache_link(void *arg)
{
	(void)arg;
	char *p = emalloc(40);
	efree(p);                              /* into the fastcache */
	memcpy(p, &(void *){(void *)0x4141414141414140ull}, sizeof(void *));
	(void)emalloc(40);                     /* pops p, follows its link */
	return 0;
}

static int child_forged_list_link(void *arg)
{
	(void)arg;
	char *a = emalloc(5000);
	char *sep = emalloc(100);
	char *b = emalloc(5000);
	char *sep2 = emalloc(100);
	_Alignas(16) static char fake[256];
	efree(a);
	efree(b); /* a and b share a size: a ring in the large trie */
	memcpy(b, &(void *){fake + 16}, sizeof(void *));
	(void)emalloc(5000); /* unlinks one of them */
	(void)emalloc(5000);
	(void)sep;
	(void)sep2;
	return 0;
}

static void test_forged_links_are_caught(void)
{
	SKIP_UNDER_TOOLS("the tool reports these misuses before zendmm can");

	expect_report(NULL, child_forged_cache_link, NULL,
	              "zend_mm_heap corrupted\n"
	                  "free-list link forged or overwritten (decodes to %x) "
	                  "(pointer %x, block size 48, segment %x of 262144 bytes)\n");

	expect_report(NULL, child_forged_list_link, NULL,
	              "zend_mm_heap corrupted\n"
	                  "free-list link forged or overwritten (decodes to %x) "
	                  "(pointer %x, block size 5008, segment %x of 262144 bytes)\n");
}

/* ---- the handler takes over --------------------------------------------- */

static int child_handler(void *arg)
{
	(void)arg;
	zendmm_set_error_handler(th_bail);
	char *p = emalloc(40);
	efree(p);
	if (setjmp(TH_BAIL.jump) == 0) {
		efree(p);
		return 1;
	}
	if (TH_BAIL.calls != 1 || TH_BAIL.kind != ZENDMM_ERROR_HEAP_CORRUPTED)
		return 2;
	if (strncmp(TH_BAIL.msg, "zend_mm_heap corrupted\nefree: block is already in the fastcache", 63) != 0)
		return 3;
	return 0;
}

static void test_handler_receives_the_report(void)
{
	SKIP_UNDER_TOOLS("the tool reports these misuses before zendmm can");
	th_child res;
	th_run_child_env(&res, NULL, child_handler, NULL);
	CHECK_EXIT(&res, 0);
	CHECK_STDERR(&res, "");
}

/* ---- ZEND_MM_DEBUG ------------------------------------------------------ */

static int child_canary(void *arg)
{
	size_t n = (size_t)(uintptr_t)arg;
	char *p = emalloc(10);
	if (zend_mem_block_size(p) != 10)
		return 9;
	memset(p + 10, 'x', n); /* n bytes past the requested size */
	efree(p);
	return 0;
}

static int child_poison(void *arg)
{
	(void)arg;
	unsigned char *p = emalloc(100);
	for (int i = 0; i < 100; i++)
		if (p[i] != 0xAA)
			return 1;
	unsigned char *z = ecalloc(1, 100);
	for (int i = 0; i < 100; i++)
		if (z[i] != 0)
			return 2;
	memset(p, 1, 100);
	p = erealloc(p, 300);
	for (int i = 0; i < 100; i++)
		if (p[i] != 1)
			return 3;
	for (int i = 100; i < 300; i++)
		if (p[i] != 0xAA)
			return 4;
	efree(p);
	/* The freed bytes past the free-list links read as poison_free. */
	for (int i = 48; i < 300; i++)
		if (p[i] != 0x55)
			return 5;
	efree(z);
	return 0;
}

static int child_shutdown_check(void *arg)
{
	(void)arg;
	char *p = emalloc(30);
	p[30] = 'x'; /* into the canary; found by the shutdown check */
	shutdown_memory_manager(0, 0);
	return 0;
}

static void test_zend_mm_debug(void)
{
	SKIP_UNDER_TOOLS("the tool reports these misuses before zendmm can");
	th_child res;
	static const th_env pad[] = {{"ZEND_MM_DEBUG", "padding=16"}, {NULL, NULL}};
	static const th_env poison[] = {{"ZEND_MM_DEBUG", "poison_alloc=0xaa,poison_free=0x55"}, {NULL, NULL}};
	static const th_env check[] = {{"ZEND_MM_DEBUG", "check_freelists_on_shutdown=1"}, {NULL, NULL}};
	static const th_env bad[] = {{"ZEND_MM_DEBUG", "padding=lots"}, {NULL, NULL}};

	expect_report(pad, child_canary, (void *)(uintptr_t)3,
	              "zend_mm_heap corrupted\n"
	                  "efree: 3 byte(s) overflown past the end of a 10-byte block (canary check) "
	                  "(pointer %x, block size 48, segment %x of 262144 bytes)\n");

	th_run_child_env(&res, pad, child_canary, (void *)(uintptr_t)16);
	CHECK_SIGNAL(&res, SIGABRT);
	CHECK(strstr(res.err, "efree: 16 byte(s) overflown past the end of a 10-byte block") != NULL);

	th_run_child_env(&res, poison, child_poison, NULL);
	CHECK_EXIT(&res, 0);
	CHECK_STDERR(&res, "");

	expect_report(check, child_shutdown_check, NULL,
	              "zend_mm_heap corrupted\n"
	                  "request shutdown: 1 byte(s) overflown past the end of a 30-byte block (canary check) "
	                  "(pointer %x, block size 48, segment %x of 262144 bytes)\n");

	th_run_child_env(&res, bad, child_canary, (void *)(uintptr_t)1);
	CHECK_EXIT(&res, 255);
	CHECK_STDERR(&res, "ZEND_MM_DEBUG: padding needs a number, not 'lots', got 'padding=lots'\n");
}

/* ---- protection off, heap check, fork ----------------------------------- */

static int child_protect_off(void *arg)
{
	(void)arg;
	char *p = emalloc(5000);
	char *q = emalloc(100);
	efree(p);
	efree(q);
	return zendmm_check_heap(NULL) == 0 ? 0 : 1;
}

static int child_check_heap_counts(void *arg)
{
	(void)arg;
	char *a = emalloc(100);
	char *b = emalloc(100);
	memset(a + zend_mem_block_size(a), 0x41, 4); /* b's 32-bit copy of a's tag */
	size_t n = zendmm_check_heap(NULL);
	(void)b;
	return (int)n;
}

static int child_fork_rekeys(void *arg)
{
	(void)arg;
	char *keep[64];
	for (int i = 0; i < 64; i++)
		keep[i] = emalloc(24 + (size_t)i * 40);
	for (int i = 0; i < 64; i += 2)
		efree(keep[i]); /* links in the cache and the lists */
	pid_t pid = fork();
	if (pid == 0) {
		/* The child's heap was re-keyed: it must still work. */
		for (int i = 0; i < 64; i += 2)
			keep[i] = emalloc(24 + (size_t)i * 40);
		for (int i = 0; i < 64; i++)
			efree(keep[i]);
		_exit(zendmm_check_heap(NULL) == 0 ? 0 : 1);
	}
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

static void test_check_heap_protect_off_and_fork(void)
{
	SKIP_UNDER_TOOLS("the tool reports these misuses before zendmm can");
	th_child res;
	static const th_env off[] = {{"ZENDMM_PROTECT", "0"}, {NULL, NULL}};
	static const th_env bad[] = {{"ZENDMM_PROTECT", "yes"}, {NULL, NULL}};

	th_run_child_env(&res, off, child_protect_off, NULL);
	CHECK_EXIT(&res, 0);

	th_run_child_env(&res, bad, child_protect_off, NULL);
	CHECK_EXIT(&res, 255);
	CHECK_STDERR(&res, "ZENDMM_PROTECT must be 0 or 1 (heap protection off or on), got 'yes'\n");

	th_run_child_env(&res, NULL, child_check_heap_counts, NULL);
	CHECK(res.exited && res.status >= 1);
	CHECK_PREFIX(res.err, "zendmm_check_heap: block ");
	CHECK(strstr(res.err, "(I1)") != NULL);

	th_run_child_env(&res, NULL, child_fork_rekeys, NULL);
	CHECK_EXIT(&res, 0);
}

int main(void)
{
	RUN(test_double_free_of_a_cached_block);
	RUN(test_double_free_of_a_cached_block_without_protection);
	RUN(test_double_free_of_a_large_block);
	RUN(test_double_free_in_a_big_heap);
	RUN(test_foreign_pointers_are_rejected);
	RUN(test_free_after_request_shutdown);
	RUN(test_overflow_is_caught_at_free);
	RUN(test_forged_links_are_caught);
	RUN(test_handler_receives_the_report);
	RUN(test_zend_mm_debug);
	RUN(test_check_heap_protect_off_and_fork);
	return th_report("test_protect");
}
