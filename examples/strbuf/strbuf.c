/*
 * strbuf.c - see strbuf.h. Every allocation goes through zendmm's copy of
 * PHP's macro layer, so this file would compile unchanged inside a PHP
 * extension against PHP's own zend_alloc.h.
 */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <zendmm_alloc.h> /* emalloc(), efree(), pemalloc(), ... (pkg-config --cflags zendmm) */

/* ---- module globals, like ZEND_BEGIN_MODULE_GLOBALS ---------------------- */

typedef struct registry_entry {
	char *name; /* pestrdup(..., 1) */
	unsigned hits;
} registry_entry;

static struct {
	/* persistent: allocated in MINIT, freed in MSHUTDOWN */
	registry_entry *entries;
	size_t count, cap;
	/* request: allocated in RINIT, gone after the request */
	size_t *request_strings;
} strbuf_globals;

#define STRBUF_G(v) (strbuf_globals.v)

void strbuf_module_startup(void)
{
	STRBUF_G(cap) = 4;
	STRBUF_G(count) = 0;
	STRBUF_G(entries) = pemalloc(STRBUF_G(cap) * sizeof(registry_entry), 1);
}

void strbuf_request_startup(void)
{
	STRBUF_G(request_strings) = ecalloc(1, sizeof(size_t));
}

void strbuf_request_shutdown(void)
{
	/* Tidy, but not required: the request shutdown releases it anyway. */
	efree(STRBUF_G(request_strings));
	STRBUF_G(request_strings) = NULL;
}

void strbuf_module_shutdown(void)
{
	for (size_t i = 0; i < STRBUF_G(count); i++)
		pefree(STRBUF_G(entries)[i].name, 1);
	pefree(STRBUF_G(entries), 1);
	STRBUF_G(entries) = NULL;
	STRBUF_G(count) = STRBUF_G(cap) = 0;
}

/* ---- strbuf: request memory ---------------------------------------------- */

static void strbuf_reserve(strbuf *b, size_t more)
{
	size_t need = b->len + more + 1; /* + NUL */
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	/* erealloc(NULL, n) is emalloc(n); it never returns NULL: over
	 * memory_limit it raises PHP's fatal error instead. */
	b->s = erealloc(b->s, cap);
	b->cap = cap;
}

void strbuf_appendl(strbuf *b, const char *text, size_t n)
{
	strbuf_reserve(b, n);
	memcpy(b->s + b->len, text, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void strbuf_append(strbuf *b, const char *text)
{
	strbuf_appendl(b, text, strlen(text));
}

void strbuf_appendf(strbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	strbuf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

char *strbuf_steal(strbuf *b)
{
	char *s = b->s ? b->s : estrdup("");
	b->s = NULL;
	b->len = b->cap = 0;
	if (STRBUF_G(request_strings))
		(*STRBUF_G(request_strings))++;
	return s;
}

void strbuf_free(strbuf *b)
{
	efree(b->s); /* efree(NULL) does nothing */
	b->s = NULL;
	b->len = b->cap = 0;
}

size_t strbuf_request_strings(void)
{
	return STRBUF_G(request_strings) ? *STRBUF_G(request_strings) : 0;
}

/* ---- the registry: persistent memory ------------------------------------- */

unsigned strbuf_register(const char *name)
{
	for (size_t i = 0; i < STRBUF_G(count); i++)
		if (strcmp(STRBUF_G(entries)[i].name, name) == 0)
			return ++STRBUF_G(entries)[i].hits;
	if (STRBUF_G(count) == STRBUF_G(cap)) {
		STRBUF_G(cap) *= 2;
		STRBUF_G(entries) = perealloc(STRBUF_G(entries),
		                              STRBUF_G(cap) * sizeof(registry_entry), 1);
	}
	registry_entry *e = &STRBUF_G(entries)[STRBUF_G(count)++];
	e->name = pestrdup(name, 1);
	e->hits = 1;
	return 1;
}

size_t strbuf_registry_size(void)
{
	return STRBUF_G(count);
}

const char *strbuf_registry_name(size_t i)
{
	return STRBUF_G(entries)[i].name;
}

unsigned strbuf_registry_hits(size_t i)
{
	return STRBUF_G(entries)[i].hits;
}
