/*
 * The seam between zendmm's Rust core and its C glue for running inside PHP
 * 8.2.36 (csrc/php_glue.c). The glue does what Rust must not: C-variadic
 * exports, and anything that can longjmp (zend_try, zend_bailout,
 * zend_error). Rust never calls a glue function that can longjmp.
 *
 * Functions named zendmm_glue_* are defined in C and called by Rust.
 * Functions named zendmm_rs_* are defined in Rust and called by C.
 * Neither family is exported from libzendmm.so.
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

/* Any other allocation failure inside PHP (size overflow, storage failure);
 * `message` is PHP's text. Behaves as PHP 8.2.36 does for that failure
 * (delayed error, or print and exit/abort); returns an action only when
 * PHP's own allocator would return to its caller. */
int zendmm_glue_on_error(int kind, const char *message, bool fallible);

/* Rust side, for the glue. */
bool zendmm_rs_is_fallible(void);      /* the current heap's fallible flag */
size_t zendmm_rs_memory_limit(void);   /* the current heap's memory_limit */

#endif
