/*
 * test_leaks.c - the debug ABI and PHP's leak report.
 *
 * Built with the debug macro layer (ZENDMM_DEBUG before zendmm_alloc.h), so
 * emalloc() & co. here pass __FILE__/__LINE__ to the zendmm_*_dbg entry points. The
 * parent never allocates: the report is on by default once a process used
 * the debug ABI, and each case needs a child that starts without that.
 * Each case leaks in a forked child, ends the request and checks the exact
 * stderr text; the addresses and lines the child used come back through a
 * shared mapping.
 */
#define ZENDMM_DEBUG 1

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "zendmm_alloc.h"
#include "test_helper.h"

/* What a child tells the parent: the leaked blocks, in address order. */
typedef struct shared_leak {
	uintptr_t addr;
	size_t size;
	int line;      /* 0: no location (release ABI) */
	int orig_line; /* relayed: the _rel macro's line; else 0 */
} shared_leak;

typedef struct shared_state {
	int n;
	shared_leak leaks[64];
	int in_order; /* the child's blocks lay in allocation order */
} shared_state;

static shared_state *shared;

static void note(const void *p, size_t size, int line, int orig_line)
{
	shared_leak *l = &shared->leaks[shared->n++];

	if (shared->n > 1 && (uintptr_t)p <= shared->leaks[shared->n - 2].addr)
		shared->in_order = 0;
	l->addr = (uintptr_t)p;
	l->size = size;
	l->line = line;
	l->orig_line = orig_line;
}

/* Relays its caller's location, the way PHP's helpers do. */
static int relay_line;
static char *relay_copy(const char *s ZEND_FILE_LINE_DC)
{
	relay_line = __LINE__ + 1;
	return estrdup_rel(s);
}

/* Every block from here has the same place, whoever calls. */
static int one_place_line;
static char *from_one_place(size_t n)
{
	one_place_line = __LINE__ + 1;
	return emalloc(n);
}

/* Replaces the asctime stamp of each "[...]  Script:  '" line by DATE;
 * returns how many stamps did not have asctime's 24 characters. */
static int normalize_stamps(char *text)
{
	static const char tail[] = "]  Script:  '";
	int bad = 0;
	char *line = text;

	while (*line != '\0') {
		char *end = strchr(line, '\n');
		char *close = strstr(line, tail);

		if (line[0] == '[' && close != NULL && (end == NULL || close < end)) {
			size_t len = (size_t)(close - line - 1);
			if (len != 24 && !(len == 4 && strncmp(line + 1, "null", 4) == 0))
				bad++;
			memmove(line + 5, close, strlen(close) + 1);
			memcpy(line + 1, "DATE", 4);
			end = strchr(line, '\n');
		}
		if (end == NULL)
			break;
		line = end + 1;
	}
	return bad;
}

/* Appends PHP's lines for the leaks the child noted, grouping them by line
 * the way zend_mm_check_leaks does: the first block of a place is printed,
 * the later ones from the same place are counted. Blocks without a place
 * (line 0, the release ABI) are printed one by one. */
static void expected_report(char *out, size_t room, const char *script)
{
	int done[64] = {0};
	int total = 0;
	size_t len = strlen(out);

	for (int i = 0; i < shared->n; i++) {
		const shared_leak *l = &shared->leaks[i];
		int repeats = 0;

		if (done[i])
			continue;
		for (int j = i + 1; j < shared->n && l->line != 0; j++) {
			if (!done[j] && shared->leaks[j].line == l->line) {
				done[j] = 1;
				repeats++;
			}
		}
		total += 1 + repeats;
		len += (size_t)snprintf(out + len, room - len, "[DATE]  Script:  '%s'\n", script);
		len += (size_t)snprintf(out + len, room - len,
		                        "%s(%d) :  Freeing 0x%.8lX (%zu bytes), script=%s\n",
		                        l->line ? __FILE__ : "Unknown", l->line,
		                        (unsigned long)l->addr, l->size, script);
		if (l->orig_line)
			len += (size_t)snprintf(out + len, room - len,
			                        "%s(%d) : Actual location (location was relayed)\n",
			                        __FILE__, l->orig_line);
		if (repeats)
			len += (size_t)snprintf(out + len, room - len, "Last leak repeated %d time%s\n",
			                        repeats, repeats > 1 ? "s" : "");
	}
	if (total)
		snprintf(out + len, room - len, "=== Total %d memory leaks detected ===\n", total);
}

/* One request that leaks from known places: single blocks, a loop, one
 * place reached twice with other leaks in between, a relay, the release
 * ABI, a large block and a realloc; plus blocks freed into the fastcache,
 * which are not leaks. */
static int leak_everything(void *arg)
{
	const char *script = arg;
	zendmm_heap_stats st = {0};
	char *b[5];
	char *p, *q, *d;
	int line;

	if (script != NULL)
		zendmm_set_script_name(script);
	shared->n = 0;
	shared->in_order = 1;

	p = emalloc(100); line = __LINE__;
	note(p, 100, line, 0);
	p = from_one_place(11);
	note(p, 11, one_place_line, 0);
	for (int i = 0; i < 5; i++) {
		b[i] = ecalloc(3, 8); line = __LINE__;
		note(b[i], 24, line, 0);
	}
	p = _emalloc(40);                       /* release ABI: no location */
	note(p, zend_mem_block_size(p), 0, 0);
	d = relay_copy("hello" ZEND_FILE_LINE_CC); line = __LINE__;
	note(d, 6, line, relay_line);
	p = _emalloc(50);
	note(p, zend_mem_block_size(p), 0, 0);
	p = from_one_place(12);                 /* same place, further on */
	note(p, 12, one_place_line, 0);
	p = safe_emalloc(10, 10, 4); line = __LINE__;
	note(p, 104, line, 0);
	p = emalloc(100000); line = __LINE__;
	note(p, 100000, line, 0);
	p = emalloc(10);
	q = erealloc(p, 3000); line = __LINE__;
	note(q, 3000, line, 0);

	/* Freed: in the fastcache (small) or back in the free lists. */
	efree(emalloc(64));
	efree(estrdup("freed"));
	efree(estrndup("freed too", 5));
	efree(_emalloc(80));
	p = emalloc(20);
	efree(erealloc(p, 40));

	st.size = sizeof st;
	STEP(zendmm_stats(NULL, &st) && st.cached_blocks >= 3);
	shutdown_memory_manager(0, 0);
	return 0;
}

static void check_report(const char *script, const char *expected_script)
{
	static char expected[16384];
	th_child res;

	expected[0] = '\0';
	CHECK(th_run_child_env(&res, NULL, leak_everything, (void *)script) == 0);
	CHECK_EXIT(&res, 0);
	CHECK(shared->in_order);
	CHECK_EQ(shared->n, 14);
	CHECK_EQ(normalize_stamps(res.err), 0);
	expected_report(expected, sizeof expected, expected_script);
	CHECK_STDERR(&res, expected);
	CHECK(strstr(res.err, "Last leak repeated 4 times\n") != NULL);
	CHECK(strstr(res.err, "Last leak repeated 1 time\n") != NULL);
	CHECK(strstr(res.err, ": Actual location (location was relayed)\n") != NULL);
	CHECK(strstr(res.err, "Unknown(0) :  Freeing 0x") != NULL);
	CHECK(strstr(strstr(res.err, "Unknown(0) :  Freeing 0x") + 1, "Unknown(0) :  Freeing 0x") != NULL);
	CHECK(strstr(res.err, "=== Total 14 memory leaks detected ===\n") != NULL);
}

static void test_report_with_program_name(void)
{
	SKIP_UNDER_TOOLS("under valgrind or ASan every call takes the tooled route; use the tool's own leak report there");
	check_report(NULL, "test_leaks");
}

static void test_report_with_script_name(void)
{
	SKIP_UNDER_TOOLS("under valgrind or ASan every call takes the tooled route; use the tool's own leak report there");
	check_report("/var/www/leaky.php", "/var/www/leaky.php");
}

/* The exact text of a one-leak report, written out by hand. */
static int leak_one(void *arg)
{
	char *p;

	(void)arg;
	zendmm_set_script_name("one.php");
	p = emalloc(7); shared->leaks[0].line = __LINE__;
	shared->leaks[0].addr = (uintptr_t)p;
	shutdown_memory_manager(0, 0);
	return 0;
}

static void test_one_leak_byte_for_byte(void)
{
	SKIP_UNDER_TOOLS("under valgrind or ASan every call takes the tooled route; use the tool's own leak report there");
	char expected[512];
	th_child res;

	CHECK(th_run_child_env(&res, NULL, leak_one, NULL) == 0);
	CHECK_EXIT(&res, 0);
	CHECK_EQ(normalize_stamps(res.err), 0);
	snprintf(expected, sizeof expected,
	         "[DATE]  Script:  'one.php'\n"
	         "%s(%d) :  Freeing 0x%.8lX (7 bytes), script=one.php\n"
	         "=== Total 1 memory leaks detected ===\n",
	         __FILE__, shared->leaks[0].line, (unsigned long)shared->leaks[0].addr);
	CHECK_STDERR(&res, expected);
}

static int no_leaks(void *arg)
{
	char *p = emalloc(10);

	(void)arg;
	p = erealloc(p, 5000);
	efree(p);
	efree(estrdup("gone"));
	shutdown_memory_manager(0, 0);
	return 0;
}

static void test_no_leaks_no_output(void)
{
	th_child res;

	CHECK(th_run_child_env(&res, NULL, no_leaks, NULL) == 0);
	CHECK_EXIT(&res, 0);
	CHECK_STDERR(&res, "");
}

static int leak_then_shutdown(void *arg)
{
	bool silent = arg != NULL;

	emalloc(10);
	shutdown_memory_manager(silent, 0);
	return 0;
}

static void test_silent_shutdown_reports_nothing(void)
{
	th_child res;

	CHECK(th_run_child_env(&res, NULL, leak_then_shutdown, "silent") == 0);
	CHECK_EXIT(&res, 0);
	CHECK_STDERR(&res, "");
}

static void test_print_leaks_0_silences_the_debug_abi(void)
{
	th_env env[] = {{"ZEND_ALLOC_PRINT_LEAKS", "0"}, {NULL, NULL}};
	th_child res;

	CHECK(th_run_child_env(&res, env, leak_then_shutdown, NULL) == 0);
	CHECK_EXIT(&res, 0);
	CHECK_STDERR(&res, "");
}

/* Release ABI only: no report by default, one with ZEND_ALLOC_PRINT_LEAKS=1. */
static int leak_release_abi(void *arg)
{
	void *p;

	(void)arg;
	p = _emalloc(10);
	shared->leaks[0].addr = (uintptr_t)p;
	shared->leaks[0].size = _zend_mem_block_size(p);
	_efree(_estrdup("freed"));
	shutdown_memory_manager(0, 0);
	return 0;
}

static void test_release_abi_is_silent_by_default(void)
{
	th_child res;

	CHECK(th_run_child_env(&res, NULL, leak_release_abi, NULL) == 0);
	CHECK_EXIT(&res, 0);
	CHECK_STDERR(&res, "");
}

static void test_print_leaks_1_reports_the_release_abi(void)
{
	SKIP_UNDER_TOOLS("under valgrind or ASan every call takes the tooled route; use the tool's own leak report there");
	th_env env[] = {{"ZEND_ALLOC_PRINT_LEAKS", "1"}, {NULL, NULL}};
	char expected[512];
	th_child res;

	CHECK(th_run_child_env(&res, env, leak_release_abi, NULL) == 0);
	CHECK_EXIT(&res, 0);
	CHECK_EQ(normalize_stamps(res.err), 0);
	CHECK_EQ(shared->leaks[0].size, 24);
	snprintf(expected, sizeof expected,
	         "[DATE]  Script:  'test_leaks'\n"
	         "Unknown(0) :  Freeing 0x%.8lX (24 bytes), script=test_leaks\n"
	         "=== Total 1 memory leaks detected ===\n",
	         (unsigned long)shared->leaks[0].addr);
	CHECK_STDERR(&res, expected);
}

static void test_bad_value_is_an_error(void)
{
	th_env env[] = {{"ZEND_ALLOC_PRINT_LEAKS", "yes"}, {NULL, NULL}};
	th_child res;

	CHECK(th_run_child_env(&res, env, NULL, NULL) == 0);
	CHECK_EXIT(&res, 255);
	CHECK_STDERR(&res, "ZEND_ALLOC_PRINT_LEAKS must be 0 or 1 (or empty for the default), got 'yes'\n");
}

/* The variable is read at every shutdown: it can be switched at run time,
 * and a bad value set at run time is reported then. Each request reports
 * only its own leaks. */
static int switch_at_run_time(void *arg)
{
	char *p;

	(void)arg;
	zendmm_set_script_name("s");
	setenv("ZEND_ALLOC_PRINT_LEAKS", "0", 1);
	emalloc(1);
	shutdown_memory_manager(0, 0);   /* silenced */
	setenv("ZEND_ALLOC_PRINT_LEAKS", "", 1);
	p = emalloc(2); shared->leaks[0].line = __LINE__;
	shared->leaks[0].addr = (uintptr_t)p;
	shutdown_memory_manager(0, 0);   /* empty: the default, on */
	setenv("ZEND_ALLOC_PRINT_LEAKS", "2", 1);
	emalloc(3);
	shutdown_memory_manager(0, 0);   /* exits 255 */
	return 0;
}

static void test_switch_at_run_time(void)
{
	SKIP_UNDER_TOOLS("under valgrind or ASan every call takes the tooled route; use the tool's own leak report there");
	char expected[1024];
	th_child res;

	CHECK(th_run_child_env(&res, NULL, switch_at_run_time, NULL) == 0);
	CHECK_EXIT(&res, 255);
	CHECK_EQ(normalize_stamps(res.err), 0);
	snprintf(expected, sizeof expected,
	         "[DATE]  Script:  's'\n"
	         "%s(%d) :  Freeing 0x%.8lX (2 bytes), script=s\n"
	         "=== Total 1 memory leaks detected ===\n"
	         "ZEND_ALLOC_PRINT_LEAKS must be 0 or 1 (or empty for the default), got '2'\n",
	         __FILE__, shared->leaks[0].line, (unsigned long)shared->leaks[0].addr);
	CHECK_STDERR(&res, expected);
}

/* An explicit heap reports its own leaks at its own shutdown, full or not. */
static int leak_on_heap(void *arg)
{
	zend_mm_heap *heap = zend_mm_startup();
	char *p, *q;

	(void)arg;
	zendmm_set_script_name("h");
	p = zend_mm_alloc(heap, 33); shared->leaks[0].line = __LINE__;
	shared->leaks[0].addr = (uintptr_t)p;
	emalloc(5);                       /* the current heap's: not reported here */
	zend_mm_shutdown(heap, 0, 0);
	q = zend_mm_alloc(heap, 10);
	q = zend_mm_realloc(heap, q, 44); shared->leaks[1].line = __LINE__;
	shared->leaks[1].addr = (uintptr_t)q;
	zend_mm_free(heap, zend_mm_alloc(heap, 20));
	zend_mm_shutdown(heap, 1, 0);
	return 0;
}

static void test_explicit_heap(void)
{
	SKIP_UNDER_TOOLS("under valgrind or ASan every call takes the tooled route; use the tool's own leak report there");
	char expected[1024];
	th_child res;

	CHECK(th_run_child_env(&res, NULL, leak_on_heap, NULL) == 0);
	CHECK_EXIT(&res, 0);
	CHECK_EQ(normalize_stamps(res.err), 0);
	snprintf(expected, sizeof expected,
	         "[DATE]  Script:  'h'\n"
	         "%s(%d) :  Freeing 0x%.8lX (33 bytes), script=h\n"
	         "=== Total 1 memory leaks detected ===\n"
	         "[DATE]  Script:  'h'\n"
	         "%s(%d) :  Freeing 0x%.8lX (44 bytes), script=h\n"
	         "=== Total 1 memory leaks detected ===\n",
	         __FILE__, shared->leaks[0].line, (unsigned long)shared->leaks[0].addr,
	         __FILE__, shared->leaks[1].line, (unsigned long)shared->leaks[1].addr);
	CHECK_STDERR(&res, expected);
}

int main(void)
{
	shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	RUN(test_report_with_program_name);
	RUN(test_report_with_script_name);
	RUN(test_one_leak_byte_for_byte);
	RUN(test_no_leaks_no_output);
	RUN(test_silent_shutdown_reports_nothing);
	RUN(test_print_leaks_0_silences_the_debug_abi);
	RUN(test_release_abi_is_silent_by_default);
	RUN(test_print_leaks_1_reports_the_release_abi);
	RUN(test_bad_value_is_an_error);
	RUN(test_switch_at_run_time);
	RUN(test_explicit_heap);
	return th_report("test_leaks");
}
