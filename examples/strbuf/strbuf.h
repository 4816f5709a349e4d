/*
 * strbuf.h - a tiny library written the way a PHP extension is written.
 *
 * Two kinds of memory, as in every PHP extension:
 *
 *   - strbuf, a string builder (PHP's smart_str in small), lives in request
 *     memory: emalloc, erealloc, estrdup, efree. Whatever a request forgets
 *     to free is gone at the request shutdown anyway.
 *   - The registry, a table of the names seen so far with a hit count, lives
 *     in persistent memory: pemalloc(..., 1), perealloc(..., 1),
 *     pestrdup(..., 1), pefree(..., 1). It survives every request shutdown
 *     and is freed by the module shutdown.
 *
 * The four hooks are the ones PHP calls on an extension: MINIT once per
 * process, RINIT and RSHUTDOWN around each request, MSHUTDOWN at the end.
 */
#ifndef STRBUF_H
#define STRBUF_H

#include <stddef.h>

/* ---- lifecycle hooks (PHP_MINIT, PHP_RINIT, PHP_RSHUTDOWN, PHP_MSHUTDOWN) */

void strbuf_module_startup(void);   /* MINIT: the persistent registry */
void strbuf_request_startup(void);  /* RINIT: per-request scratch */
void strbuf_request_shutdown(void); /* RSHUTDOWN */
void strbuf_module_shutdown(void);  /* MSHUTDOWN: frees the registry */

/* ---- request memory: a growing string --------------------------------- */

typedef struct strbuf {
	char *s;    /* emalloc'd, NUL-terminated once anything was appended */
	size_t len; /* bytes in s, without the NUL */
	size_t cap; /* bytes allocated */
} strbuf;

#define STRBUF_INIT {NULL, 0, 0}

void strbuf_append(strbuf *b, const char *text);
void strbuf_appendl(strbuf *b, const char *text, size_t n);
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void strbuf_appendf(strbuf *b, const char *fmt, ...);
/* Hands over the string (efree it, or leave it to the request shutdown)
 * and leaves b empty. Never NULL: an empty builder gives estrdup(""). */
char *strbuf_steal(strbuf *b);
void strbuf_free(strbuf *b);

/* How many strings this request has built with strbuf_steal (kept in the
 * RINIT scratch). */
size_t strbuf_request_strings(void);

/* ---- persistent memory: the registry ---------------------------------- */

/* Counts one more hit for name (copied into persistent memory the first
 * time) and returns the new count. */
unsigned strbuf_register(const char *name);
size_t strbuf_registry_size(void);
const char *strbuf_registry_name(size_t i);
unsigned strbuf_registry_hits(size_t i);

#endif /* STRBUF_H */
