/*
 * test_helper.h - the smallest possible test harness for the C tests
 * (in the spirit of mimalloc's test/testhelper.h).
 *
 *   CHECK(cond), CHECK_EQ(a, b), CHECK_STR_EQ(a, b), CHECK_PREFIX(s, p)
 *       count a pass or print the failing expression and count a failure;
 *   RUN(fn)
 *       run a `static void fn(void)` test and print "[ok]" or "[FAIL]";
 *   th_run_child(&res, fn, arg)
 *       run fn(arg) in a forked child, capturing its stderr and how it ended;
 *   th_run_child_env(&res, env, fn, arg)
 *       the same, with env applied (setenv/unsetenv) in the child and then
 *       start_memory_manager() called before fn;
 *   return th_report("NAME");
 *       prints "NAME: N passed, M failed" as the last line and returns M,
 *       so each program's exit status is its failure count;
 *   SKIP_UNDER_VALGRIND("why"), SKIP_UNDER_TOOLS("why");
 *       at the top of a test that misuses the heap on purpose: under
 *       valgrind (make test-valgrind), or ASan too, the tool reports the
 *       misuse before zendmm can, so the test says why and returns;
 *   STEP(cond)
 *       inside a child function: on failure print where and return 1;
 *   zendmm_set_error_handler(th_bail); if (setjmp(TH_BAIL.jump) == 0) ...
 *       PHP's bailout: th_bail counts the call in TH_BAIL.calls, keeps
 *       TH_BAIL.kind and TH_BAIL.msg, and longjmps back.
 *
 * Everything goes to stdout except the children's stderr, which is
 * captured. Needs POSIX (compile with -D_GNU_SOURCE).
 */
#ifndef ZENDMM_TEST_HELPER_H
#define ZENDMM_TEST_HELPER_H

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zendmm.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define TH_HAVE_VALGRIND 1
#endif
#endif

static int th_passed;
static int th_failed;

static inline int th_check(int ok, const char *file, int line, const char *what)
{
	if (ok) {
		th_passed++;
	} else {
		th_failed++;
		printf("  %s:%d: CHECK failed: %s\n", file, line, what);
		fflush(stdout);
	}
	return ok;
}

static inline int th_check_eq(uintmax_t a, uintmax_t b, const char *file, int line,
                       const char *sa, const char *sb)
{
	if (a == b) {
		th_passed++;
		return 1;
	}
	th_failed++;
	printf("  %s:%d: CHECK failed: %s == %s (%ju != %ju)\n", file, line, sa, sb, a, b);
	fflush(stdout);
	return 0;
}

static inline int th_check_str(const char *a, const char *b, int prefix, const char *file,
                        int line, const char *sa, const char *sb)
{
	int ok = a != NULL && b != NULL &&
	         (prefix ? strncmp(a, b, strlen(b)) == 0 : strcmp(a, b) == 0);
	if (ok) {
		th_passed++;
		return 1;
	}
	th_failed++;
	printf("  %s:%d: CHECK failed: %s %s %s\n      got:      \"%s\"\n      expected: \"%s\"%s\n",
	       file, line, sa, prefix ? "starts with" : "==", sb,
	       a ? a : "(null)", b ? b : "(null)", prefix ? "..." : "");
	fflush(stdout);
	return 0;
}

#define CHECK(cond)         th_check((cond) ? 1 : 0, __FILE__, __LINE__, #cond)
#define CHECK_EQ(a, b)      th_check_eq((uintmax_t)(a), (uintmax_t)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_STR_EQ(a, b)  th_check_str((a), (b), 0, __FILE__, __LINE__, #a, #b)
#define CHECK_PREFIX(s, p)  th_check_str((s), (p), 1, __FILE__, __LINE__, #s, #p)

#define RUN(fn)                                                              \
	do {                                                                     \
		int th_failed_before_ = th_failed;                                   \
		fn();                                                                \
		printf("[%s] %s\n", th_failed == th_failed_before_ ? "ok" : "FAIL", #fn); \
		fflush(stdout);                                                      \
	} while (0)

static inline int th_on_valgrind(void)
{
#ifdef TH_HAVE_VALGRIND
	return RUNNING_ON_VALGRIND != 0;
#else
	return 0;
#endif
}

/* Under valgrind or ASan: zendmm's own detection tests stand aside, as the
 * tool reports the misuse (or the tooled route changes what is counted). */
static inline int th_on_tool(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return 1;
#else
	return th_on_valgrind();
#endif
}

/* Ends the calling test early, saying why, when `cond` holds. */
#define TH_SKIP_IF(cond, under, why)                                         \
	do {                                                                     \
		if (cond) {                                                          \
			printf("  skipped under %s: %s\n", under, why);                  \
			return;                                                          \
		}                                                                    \
	} while (0)

#define SKIP_UNDER_TOOLS(why) TH_SKIP_IF(th_on_tool(), "valgrind/ASan", why)
#define SKIP_UNDER_VALGRIND(why) TH_SKIP_IF(th_on_valgrind(), "valgrind", why)

static inline int th_report(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, th_passed, th_failed);
	fflush(stdout);
	return th_failed;
}

/* ---- heap figures ------------------------------------------------------- */

/* zendmm_stats() of `heap` (NULL: the current heap), checked. */
static inline zendmm_heap_stats th_stats(const zend_mm_heap *heap)
{
	zendmm_heap_stats st;

	memset(&st, 0, sizeof st);
	st.size = sizeof st;
	CHECK(zendmm_stats(heap, &st));
	return st;
}

/* ---- a handler that bails out, as PHP's zend_bailout() ------------------ */

/* What th_bail saw, and where it jumps: setjmp(TH_BAIL.jump) first. */
typedef struct th_bail_state {
	jmp_buf jump;
	volatile int calls;
	volatile int kind;
	char msg[512];
} th_bail_state;

static inline th_bail_state *th_bail_state_get(void)
{
	static th_bail_state state;
	return &state;
}
#define TH_BAIL (*th_bail_state_get())

/* A zendmm_error_handler: counts the call, keeps kind and message, jumps. */
static inline void th_bail(zendmm_error_kind kind, const char *message)
{
	TH_BAIL.calls++;
	TH_BAIL.kind = (int)kind;
	snprintf(TH_BAIL.msg, sizeof TH_BAIL.msg, "%s", message != NULL ? message : "(null)");
	longjmp(TH_BAIL.jump, 1);
}

/* ---- forked children ---------------------------------------------------- */

/* Inside a child function: a failed step prints where and returns 1. */
#define STEP(cond)                                                               \
	do {                                                                         \
		if (!(cond)) {                                                           \
			fprintf(stderr, "%s:%d: failed in the child: %s\n", __FILE__, __LINE__, #cond); \
			return 1;                                                            \
		}                                                                        \
	} while (0)


typedef struct th_child {
	int exited;    /* ended with exit()/_exit() */
	int status;    /* its exit status */
	int signaled;  /* killed by a signal */
	int sig;       /* that signal */
	size_t err_len;
	char err[16384]; /* captured stderr (truncated), NUL-terminated */
} th_child;

/* One environment change: value NULL means unsetenv(name). */
typedef struct th_env {
	const char *name;
	const char *value;
} th_env;

typedef int (*th_child_fn)(void *arg);

/* The variables zendmm reads; th_run_child_env unsets them before applying env. */
static const char *const th_zendmm_vars[] = {
	"ZEND_MM_MEM_TYPE", "ZEND_MM_SEG_SIZE", "ZEND_MM_COMPACT", "USE_ZEND_ALLOC",
	"ZENDMM_PROTECT", "ZEND_MM_DEBUG",
	"ZENDMM_STATS", "ZENDMM_CACHE_STAT", "ZEND_ALLOC_PRINT_LEAKS", NULL
};

#if defined(__SANITIZE_ADDRESS__)
/* Under ASan, a failing huge malloc() adds "==PID==WARNING: ..." lines to the
 * child's stderr: drop them so the expected texts stay exact. */
static inline void th_drop_sanitizer_lines(th_child *res)
{
	char *in = res->err, *out = res->err;
	while (*in != '\0') {
		size_t n = strcspn(in, "\n");
		int keep = !(in[0] == '=' && in[1] == '=');
		if (in[n] == '\n')
			n++;
		if (keep) {
			memmove(out, in, n);
			out += n;
		}
		in += n;
	}
	*out = '\0';
	res->err_len = (size_t)(out - res->err);
}
#endif

static inline int th_fork(th_child *res, const th_env *env, size_t nenv, int start_mm,
                   th_child_fn fn, void *arg)
{
	int fds[2];
	pid_t pid;
	int st = 0;

	memset(res, 0, sizeof *res);
	if (pipe(fds) != 0) {
		perror("pipe");
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		struct rlimit no_core = {0, 0};
		int rc;
		size_t i;

		close(fds[0]);
		if (dup2(fds[1], STDERR_FILENO) < 0)
			_exit(120);
		close(fds[1]);
		setrlimit(RLIMIT_CORE, &no_core); /* expected aborts: no core files */
		alarm(60);                        /* a hung child fails, it does not hang the suite */
		if (start_mm) {
			for (i = 0; th_zendmm_vars[i] != NULL; i++)
				unsetenv(th_zendmm_vars[i]);
		}
		for (i = 0; i < nenv; i++) {
			if (env[i].value != NULL)
				setenv(env[i].name, env[i].value, 1);
			else
				unsetenv(env[i].name);
		}
		if (start_mm)
			start_memory_manager();
		rc = fn != NULL ? fn(arg) : 0;
		fflush(stdout);
		fflush(stderr);
		_exit(rc & 0xff);
	}

	close(fds[1]);
	for (;;) {
		char scratch[4096];
		char *dst = scratch;
		size_t room = sizeof scratch;
		ssize_t n;

		if (res->err_len + 1 < sizeof res->err) {
			dst = res->err + res->err_len;
			room = sizeof res->err - 1 - res->err_len;
		}
		n = read(fds[0], dst, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (dst != scratch)
			res->err_len += (size_t)n;
	}
	res->err[res->err_len] = '\0';
	close(fds[0]);
#if defined(__SANITIZE_ADDRESS__)
	th_drop_sanitizer_lines(res);
#endif

	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			perror("waitpid");
			return -1;
		}
	}
	if (WIFEXITED(st)) {
		res->exited = 1;
		res->status = WEXITSTATUS(st);
	} else if (WIFSIGNALED(st)) {
		res->signaled = 1;
		res->sig = WTERMSIG(st);
	}
	return 0;
}

/* fn(arg) in a child that inherits this process as it is (heap included). */
static inline int th_run_child(th_child *res, th_child_fn fn, void *arg)
{
	return th_fork(res, NULL, 0, 0, fn, arg);
}

/* fn(arg) in a child that first clears zendmm's variables, applies env
 * (terminated by an entry whose name is NULL) and calls
 * start_memory_manager(). */
static inline int th_run_child_env(th_child *res, const th_env *env, th_child_fn fn, void *arg)
{
	size_t n = 0;

	while (env != NULL && env[n].name != NULL)
		n++;
	return th_fork(res, env, n, 1, fn, arg);
}

/* The first line of the captured stderr, without its newline. */
static inline const char *th_first_line(const th_child *res)
{
	static char line[4096];
	size_t n = strcspn(res->err, "\n");

	if (n >= sizeof line)
		n = sizeof line - 1;
	memcpy(line, res->err, n);
	line[n] = '\0';
	return line;
}

static inline void th_describe(const th_child *res)
{
	if (res->exited)
		printf("      child exited with status %d", res->status);
	else if (res->signaled)
		printf("      child killed by signal %d (%s)", res->sig, strsignal(res->sig));
	else
		printf("      child did not run");
	printf("; stderr:\n%s%s", res->err, res->err_len && res->err[res->err_len - 1] != '\n' ? "\n" : "");
	printf("      ----\n");
	fflush(stdout);
}

/* The child ended with exit(code). */
#define CHECK_EXIT(res, code)                                                     \
	do {                                                                          \
		if (!CHECK((res)->exited && (res)->status == (code)))                     \
			th_describe(res);                                                     \
	} while (0)

/* The child was killed by signal sig. */
#define CHECK_SIGNAL(res, signo)                                                  \
	do {                                                                          \
		if (!CHECK((res)->signaled && (res)->sig == (signo)))                     \
			th_describe(res);                                                     \
	} while (0)

/* The child's stderr, byte for byte. */
#define CHECK_STDERR(res, text)                                                   \
	do {                                                                          \
		if (!CHECK_STR_EQ((res)->err, (text)))                                    \
			th_describe(res);                                                     \
	} while (0)

/* The child's first stderr line, without its newline. */
#define CHECK_FIRST_LINE(res, text)                                               \
	do {                                                                          \
		if (!CHECK_STR_EQ(th_first_line(res), (text)))                            \
			th_describe(res);                                                     \
	} while (0)

#endif /* ZENDMM_TEST_HELPER_H */
