/*
 * zendmm's glue for running inside PHP 8.2.36 (Debian's build, which adds a
 * delayed-OOM protocol to stock 8.2). The protocol is described in
 * doc/php82-oom-protocol.md; the seam with the Rust core is csrc/glue.h.
 *
 * This file does what Rust must not do: define C-variadic functions, and run
 * code that can longjmp (zend_try, zend_error_zstr_at, _zend_bailout). No
 * Rust frame is ever on the stack while PHP longjmps: Rust only calls
 * zendmm_glue_* functions, which return or end the process, and PHP calls the
 * two exported PHP functions below directly.
 *
 * It is compiled with PHP's headers, so every struct layout and offset comes
 * from them, but it is never linked against libphp: every PHP global and
 * function is looked up with dlsym(RTLD_DEFAULT, ...) by zendmm_glue_init.
 * Outside PHP (a plain C program) that lookup fails, init returns 0, and the
 * Rust side handles errors itself; it then never calls the other
 * zendmm_glue_* functions (if it did, they would neither record nor report
 * anything: on_limit returns RETURN_NULL for fallible calls and PROCEED
 * otherwise, on_error falls back to print-and-exit/abort).
 *
 * Without PHP's headers (build.rs passes -DZENDMM_NO_PHP_HEADERS), the glue
 * is a stub: init returns 0 and the exported PHP functions print a message and
 * abort, so libzendmm still builds and works as a plain C allocator.
 */
#define _GNU_SOURCE 1

#include "glue.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef ZENDMM_NO_PHP_HEADERS

/* ------------------------------------------------------------------------ */
/* Stub build: no PHP headers were found at build time.                     */
/* ------------------------------------------------------------------------ */

__attribute__((cold, noreturn)) static void stub_abort(const char *what)
{
    fprintf(stderr,
            "zendmm: %s called, but libzendmm was built without PHP's headers "
            "(install php8.2-dev and rebuild to run inside PHP)\n",
            what);
    abort();
}

int zendmm_glue_init(void)
{
    return 0;
}

int zendmm_glue_on_limit(size_t limit, size_t tried, bool fallible)
{
    (void)limit;
    (void)tried;
    return fallible ? ZENDMM_GLUE_RETURN_NULL : ZENDMM_GLUE_PROCEED;
}

void zendmm_glue_on_hard_limit(size_t hard_limit, size_t tried)
{
    fprintf(stderr,
            "Hard memory limit of %zu bytes exhausted (tried to allocate %zu bytes) in Unknown on line 0\n",
            hard_limit, tried);
    _exit(137);
}

int zendmm_glue_on_error(int kind, const char *message, bool fallible)
{
    (void)fallible;
    if (kind == ZENDMM_GLUE_KIND_OUT_OF_MEMORY || kind == ZENDMM_GLUE_KIND_PERSISTENT_OUT_OF_MEMORY) {
        fputs("Out of memory\n", stderr);
        exit(1);
    }
    fprintf(stderr, "%s\n", message ? message : "zendmm: allocation failed");
    abort();
}

__attribute__((visibility("default"))) void zend_mm_delayed_error_or_panic(bool delay, const char *format, ...)
{
    (void)delay;
    (void)format;
    stub_abort("zend_mm_delayed_error_or_panic");
}

__attribute__((visibility("default"))) void zend_handle_delayed_oom(void)
{
    stub_abort("zend_handle_delayed_oom");
}

#else /* PHP headers available */

#include <dlfcn.h>
#include <link.h>

#include "zend.h"
#include "zend_globals.h"
#include "zend_exceptions.h"
#include "zend_execute.h"
#include "zend_compile.h"
#include "php_version.h"

#if PHP_VERSION_ID < 80200 || PHP_VERSION_ID >= 80300
#error "csrc/php_glue.c targets PHP 8.2 (8.2.35+ with the delayed-OOM protocol)"
#endif

/* Every PHP function the glue calls, typed from PHP's own prototypes. */
typedef __typeof__(&zend_is_executing) fn_is_executing;
typedef __typeof__(&zend_get_executed_filename_ex) fn_executed_filename;
typedef __typeof__(&zend_get_executed_lineno) fn_executed_lineno;
typedef __typeof__(&zend_is_compiling) fn_is_compiling;
typedef __typeof__(&zend_get_compiled_filename) fn_compiled_filename;
typedef __typeof__(&zend_get_compiled_lineno) fn_compiled_lineno;
typedef __typeof__(&zend_error_zstr_at) fn_error_zstr_at;
typedef __typeof__(&zend_throw_unwind_exit) fn_throw_unwind_exit;
typedef __typeof__(&_zend_bailout) fn_bailout;
typedef void *(*fn_emalloc)(size_t size);
typedef void (*fn_efree)(void *ptr);

static struct {
    int state; /* 0: not looked up yet, 1: inside PHP, -1: not PHP */
    zend_executor_globals *eg;
    zend_string **const *known_strings; /* &zend_known_strings */
    fn_is_executing is_executing;
    fn_executed_filename executed_filename;
    fn_executed_lineno executed_lineno;
    fn_is_compiling is_compiling;
    fn_compiled_filename compiled_filename;
    fn_compiled_lineno compiled_lineno;
    fn_error_zstr_at error_zstr_at;
    fn_throw_unwind_exit throw_unwind_exit;
    fn_bailout bailout;
    /* The request allocator PHP itself reaches through its PLT: the same one
     * zend_deactivate's zend_mm_oom_info_dtor will free our strings with. */
    fn_emalloc req_alloc;
    fn_efree req_free;
} php;

#define G(field) (php.eg->field)

/* The size of the object a data symbol names, or 0 if unknown. */
static size_t symbol_size(const void *addr)
{
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    if (!dladdr1(addr, &info, (void **)&sym, RTLD_DL_SYMENT) || sym == NULL || info.dli_saddr != addr) {
        return 0;
    }
    return (size_t)sym->st_size;
}

#define LOOKUP(field, name)                                          \
    do {                                                             \
        void *p_ = dlsym(RTLD_DEFAULT, name);                        \
        if (p_ == NULL) {                                            \
            return 0;                                                \
        }                                                            \
        *(void **)&php.field = p_;                                   \
    } while (0)

static int lookup_all(void)
{
    void *eg = dlsym(RTLD_DEFAULT, "executor_globals");
    void *cg = dlsym(RTLD_DEFAULT, "compiler_globals");
    void *known = dlsym(RTLD_DEFAULT, "zend_known_strings");
    if (eg == NULL || cg == NULL || known == NULL) {
        return 0;
    }
    /* The layouts used below come from 8.2.36's headers: refuse a PHP whose
     * globals differ in size (stock 8.2 has no EG(delayed_oom), for one).
     * (get_zend_version() cannot be asked: start_memory_manager runs before
     * zend_startup fills it in.) */
    if (symbol_size(eg) != sizeof(zend_executor_globals) || symbol_size(cg) != sizeof(zend_compiler_globals)) {
        return 0;
    }
    LOOKUP(is_executing, "zend_is_executing");
    LOOKUP(executed_filename, "zend_get_executed_filename_ex");
    LOOKUP(executed_lineno, "zend_get_executed_lineno");
    LOOKUP(is_compiling, "zend_is_compiling");
    LOOKUP(compiled_filename, "zend_get_compiled_filename");
    LOOKUP(compiled_lineno, "zend_get_compiled_lineno");
    LOOKUP(error_zstr_at, "zend_error_zstr_at");
    LOOKUP(throw_unwind_exit, "zend_throw_unwind_exit");
    LOOKUP(bailout, "_zend_bailout");
    LOOKUP(req_alloc, "_emalloc");
    LOOKUP(req_free, "_efree");
    php.known_strings = (zend_string **const *)known;
    php.eg = (zend_executor_globals *)eg;
    return 1;
}

int zendmm_glue_init(void)
{
    if (php.state == 0) {
        php.state = lookup_all() ? 1 : -1;
    }
    return php.state == 1;
}

static bool ready(void)
{
    return zendmm_glue_init() == 1;
}

/* ------------------------------------------------------------------------ */
/* zend_strings                                                             */
/* ------------------------------------------------------------------------ */

/* A zend_string holding `len` bytes of `text`, with refcount 1; persistent
 * strings come from libc (zend_mm_oom_info_dtor frees them with free()),
 * request strings from the request allocator (freed with _efree). */
static zend_string *new_string(const char *text, size_t len, bool persistent)
{
    size_t size = ZEND_MM_ALIGNED_SIZE(_ZSTR_STRUCT_SIZE(len));
    zend_string *s = persistent ? malloc(size) : php.req_alloc(size);
    if (s == NULL) {
        /* What __zend_malloc does; _emalloc never returns NULL. */
        fputs("Out of memory\n", stderr);
        exit(1);
    }
    GC_SET_REFCOUNT(s, 1);
    GC_TYPE_INFO(s) = GC_STRING | (persistent ? (IS_STR_PERSISTENT << GC_FLAGS_SHIFT) : 0);
    ZSTR_H(s) = 0;
    ZSTR_LEN(s) = len;
    memcpy(ZSTR_VAL(s), text, len);
    ZSTR_VAL(s)[len] = '\0';
    return s;
}

static void addref_string(zend_string *s)
{
    if (!ZSTR_IS_INTERNED(s)) {
        GC_ADDREF(s);
    }
}

/* zend_string_release, with the allocator PHP would use. */
static void release_string(zend_string *s)
{
    if (s == NULL || ZSTR_IS_INTERNED(s)) {
        return;
    }
    if (GC_DELREF(s) == 0) {
        if (GC_FLAGS(s) & IS_STR_PERSISTENT) {
            free(s);
        } else {
            php.req_free(s);
        }
    }
}

/* What zend_mm_oom_info_dtor does (PHP's copy is hidden; zend_deactivate
 * calls it directly on EG(delayed_oom)). */
static void oom_info_dtor(zend_oom_info *info)
{
    if (info->message != NULL) {
        release_string(info->message);
        info->message = NULL;
    }
    if (info->filename != NULL) {
        release_string(info->filename);
        info->filename = NULL;
    }
}

/* Where PHP is: the executing script, else the file being compiled, else
 * "Unknown" on line 0. The filename is borrowed (NULL only before
 * zend_startup). */
static zend_string *current_location(uint32_t *lineno)
{
    zend_string *file = NULL;
    uint32_t line = 0;
    if (php.is_executing()) {
        file = php.executed_filename();
        line = php.executed_lineno();
    } else if (php.is_compiling()) {
        file = php.compiled_filename();
        line = (uint32_t)php.compiled_lineno();
    }
    if (file == NULL) {
        /* NULL only before zend_startup has made the known strings. */
        file = *php.known_strings ? (*php.known_strings)[ZEND_STR_UNKNOWN_CAPITALIZED] : NULL;
        line = 0;
    }
    *lineno = line;
    return file;
}

/* ------------------------------------------------------------------------ */
/* Recording a delayed OOM                                                  */
/* ------------------------------------------------------------------------ */

/* Records the error in EG(delayed_oom) and raises EG(vm_interrupt), unless
 * an error is already pending, being handled or handled in this request. */
static void record_delayed_oom_v(const char *format, va_list args)
{
    zend_oom_info *info = &G(delayed_oom);
    if (info->state != ZEND_OOM_STATE_NONE) {
        return;
    }
    uint32_t lineno;
    zend_string *file = current_location(&lineno);

    char text[1024];
    vsnprintf(text, sizeof text, format, args);

    /* php_request_shutdown resets the state to NONE without freeing what a
     * never-handled error left; PHP overwrites (leaks) it, we release it. */
    oom_info_dtor(info);

    info->message = new_string(text, strlen(text), true);
    if (file != NULL) {
        addref_string(file);
    } else {
        file = new_string("Unknown", sizeof "Unknown" - 1, true);
    }
    info->filename = file;
    info->lineno = lineno;
    info->state = ZEND_OOM_STATE_PENDING;
    zend_atomic_bool_store_ex(&G(vm_interrupt), true);
}

static void record_delayed_oom(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    record_delayed_oom_v(format, args);
    va_end(args);
}

__attribute__((cold, noreturn)) static void panic(const char *message)
{
    fprintf(stderr, "%s\n", message);
    abort();
}

__attribute__((cold, noreturn)) static void out_of_memory(void)
{
    fputs("Out of memory\n", stderr);
    exit(1);
}

/* ------------------------------------------------------------------------ */
/* The seam (csrc/glue.h)                                                   */
/* ------------------------------------------------------------------------ */

int zendmm_glue_on_limit(size_t limit, size_t tried, bool fallible)
{
    if (ready()) {
        record_delayed_oom("Allowed memory size of %zu bytes exhausted (tried to allocate %zu bytes)", limit, tried);
    }
    return fallible ? ZENDMM_GLUE_RETURN_NULL : ZENDMM_GLUE_PROCEED;
}

void zendmm_glue_on_hard_limit(size_t hard_limit, size_t tried)
{
    zend_string *file = NULL;
    uint32_t lineno = 0;
    if (ready()) {
        file = current_location(&lineno);
    }
    fprintf(stderr, "Hard memory limit of %zu bytes exhausted (tried to allocate %zu bytes) in %s on line %d\n",
            hard_limit, tried, file ? ZSTR_VAL(file) : "Unknown", (int)lineno);
    _exit(137);
}

int zendmm_glue_on_error(int kind, const char *message, bool fallible)
{
    if (message == NULL) {
        message = "zendmm: allocation failed";
    }
    switch (kind) {
    case ZENDMM_GLUE_KIND_MEMORY_LIMIT:
    case ZENDMM_GLUE_KIND_SIZE_OVERFLOW:
        /* zend_mm_delayed_error_or_panic(heap->fallible, ...) */
        if (fallible && ready()) {
            record_delayed_oom("%s", message);
            return ZENDMM_GLUE_RETURN_NULL;
        }
        if (kind == ZENDMM_GLUE_KIND_MEMORY_LIMIT && ready()) {
            record_delayed_oom("%s", message);
            return ZENDMM_GLUE_PROCEED;
        }
        panic(message);
    case ZENDMM_GLUE_KIND_OUT_OF_MEMORY:
    case ZENDMM_GLUE_KIND_PERSISTENT_OUT_OF_MEMORY:
        /* zend_out_of_memory(): storage failures are never delayed. */
        out_of_memory();
    default:
        /* zend_mm_panic(), e.g. "zend_mm_heap corrupted". */
        panic(message);
    }
}

/* ------------------------------------------------------------------------ */
/* PHP's exported functions                                                 */
/* ------------------------------------------------------------------------ */

ZEND_API ZEND_COLD void zend_mm_delayed_error_or_panic(bool delay, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    if (delay && ready()) {
        record_delayed_oom_v(format, args);
        va_end(args);
        return;
    }
    char text[1024];
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    panic(text);
}

ZEND_API void ZEND_FASTCALL zend_handle_delayed_oom(void)
{
    if (!ready() || G(delayed_oom).state != ZEND_OOM_STATE_PENDING) {
        return;
    }
    zend_execute_data *const saved_ex = G(current_execute_data);
    G(delayed_oom).state = ZEND_OOM_STATE_HANDLING;
    zendmm_rs_set_overflow(true); /* AG(mm_heap)->overflow = 1 */

    /* The message becomes a request string (allocated past the limit: the
     * state is no longer NONE). */
    zend_string *old = G(delayed_oom).message;
    G(delayed_oom).message = old ? new_string(ZSTR_VAL(old), ZSTR_LEN(old), false) : new_string("", 0, false);
    release_string(old);

    if (saved_ex != NULL) {
        /* Unwind the running frames as exit() does (no finally blocks). */
        G(exception) = NULL;
        php.throw_unwind_exit();
    }

    /* zend_try { zend_error_zstr_at(E_ERROR, ...) } zend_end_try():
     * php_error_cb bails out of the fatal error; catch it here. */
    JMP_BUF *volatile saved_bailout = G(bailout);
    JMP_BUF bailout;
    G(bailout) = &bailout;
    if (SETJMP(bailout) == 0) {
        php.error_zstr_at(E_ERROR, G(delayed_oom).filename, G(delayed_oom).lineno, G(delayed_oom).message);
    }
    G(bailout) = saved_bailout;

    zendmm_rs_set_overflow(false);
    G(current_execute_data) = saved_ex;
    G(opline_before_exception) = NULL;
    oom_info_dtor(&G(delayed_oom));
    G(delayed_oom).state = ZEND_OOM_STATE_HANDLED;
    if (saved_ex == NULL) {
        /* No frame to unwind: leave through the caller's zend_try. */
        php.bailout("./Zend/zend_alloc.c", 3521);
    }
}

#endif /* ZENDMM_NO_PHP_HEADERS */
