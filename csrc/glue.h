/*
 * The seam between zendmm's Rust core and its C glue for running inside PHP
 * 8.2.36 (csrc/php_glue.c). The glue does what Rust must not: C-variadic
 * exports, and anything that can longjmp (zend_try, zend_bailout,
 * zend_error). Rust never calls a glue function that can longjmp.
 *
 * Functions named zendmm_glue_* are defined in C and called by Rust.
 * Functions named zendmm_rs_* are defined in Rust and called by C.
 * The glue functions stay local to libzendmm.so; zendmm_rs_* are exported
 * (rustc exports every #[no_mangle] function of a cdylib), under a prefix of
 * their own.
 */
#ifndef ZENDMM_GLUE_H
#define ZENDMM_GLUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the allocator does after the glue has handled a failed allocation. */
#define ZENDMM_GLUE_RETURN_NULL 0 /* give the caller NULL (fallible calls) */
#define ZENDMM_GLUE_PROCEED     1 /* allocate anyway, past memory_limit, up to the hard limit */

/* 1 when the process is a PHP 8.2 engine whose globals and functions the glue
 * found (dlsym), else 0. Idempotent; Rust calls it from start_memory_manager. */
int zendmm_glue_init(void);

/* memory_limit would be exceeded by taking `tried` more segment bytes.
 * Records PHP's delayed OOM (EG(delayed_oom), vm_interrupt) unless one is
 * already pending or being handled, and returns the action. Never longjmps. */
int zendmm_glue_on_limit(size_t limit, size_t tried, bool fallible);

/* The hard limit would be exceeded: prints PHP 8.2.36's hard-limit line and
 * _exit(137). */
void zendmm_glue_on_hard_limit(size_t hard_limit, size_t tried) __attribute__((noreturn));

/* `kind` of zendmm_glue_on_error: the values of zendmm_error_kind (zendmm.h). */
#define ZENDMM_GLUE_KIND_MEMORY_LIMIT             1 /* delayed like on_limit */
#define ZENDMM_GLUE_KIND_OUT_OF_MEMORY            2 /* "Out of memory\n", exit(1) */
#define ZENDMM_GLUE_KIND_SIZE_OVERFLOW            3 /* fallible: delayed + NULL; else "msg\n", abort() */
#define ZENDMM_GLUE_KIND_HEAP_CORRUPTED           4 /* "msg\n", abort() */
#define ZENDMM_GLUE_KIND_PERSISTENT_OUT_OF_MEMORY 5 /* "Out of memory\n", exit(1) */

/* Any other allocation failure inside PHP (size overflow, storage failure);
 * `message` is PHP's text. Behaves as PHP 8.2.36 does for that failure
 * (delayed error, or print and exit/abort); returns an action only when
 * PHP's own allocator would return to its caller. */
int zendmm_glue_on_error(int kind, const char *message, bool fallible);

/* Rust side, for the glue. */
/* zend_handle_delayed_oom sets the current heap's `overflow` flag (PHP's
 * AG(mm_heap)->overflow, read by zend_alloc_in_memory_limit_error_reporting,
 * which makes php_error_cb discard the output buffers) around its report. */
void zendmm_rs_set_overflow(bool reporting);

#endif
