/*
 * demo.c - zendmm seen from a PHP extension.
 *
 * A persistent route table (pemalloc(..., 1)) lives for the whole process,
 * while each simulated request builds strings, hash-table-like arrays and
 * objects with emalloc & co., frees some of them and leaves the rest to the
 * request shutdown. After each request the memory_get_usage()-style figures
 * are printed. A last request runs into memory_limit: the error handler
 * prints PHP's fatal error and bails out with longjmp, as PHP does.
 *
 *   cc -std=c11 -Iinclude demo/demo.c -Ltarget/release -lzendmm \
 *      -Wl,-rpath,$PWD/target/release -o zendmm-demo
 */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include "zendmm_alloc.h"

/* ---- process-wide state: persistent memory ------------------------------ */

typedef struct route {
	char *uri;
	unsigned hits;
	size_t worst_peak;
} route;

static route *routes;
static size_t nroutes;

static route *route_find(const char *uri)
{
	for (size_t i = 0; i < nroutes; i++)
		if (strcmp(routes[i].uri, uri) == 0)
			return &routes[i];
	routes = perealloc(routes, (nroutes + 1) * sizeof *routes, 1);
	routes[nroutes] = (route){pestrdup(uri, 1), 0, 0};
	return &routes[nroutes++];
}

/* ---- request-scope data structures -------------------------------------- */

typedef struct smart_str { /* a growing string, like PHP's smart_str */
	char *s;
	size_t len, cap;
} smart_str;

static void str_append(smart_str *str, const char *text)
{
	size_t n = strlen(text);
	if (str->len + n + 1 > str->cap) {
		str->cap = (str->len + n + 1) * 2;
		str->s = erealloc(str->s, str->cap);
	}
	memcpy(str->s + str->len, text, n + 1);
	str->len += n;
}

typedef struct bucket {
	char *key, *val;
} bucket;

typedef struct array { /* a packed "HashTable" */
	bucket *slots;
	size_t used, size;
} array;

static void array_init(array *a)
{
	a->used = 0;
	a->size = 8;
	a->slots = ecalloc(a->size, sizeof *a->slots);
}

static void array_set(array *a, const char *key, const char *val)
{
	if (a->used == a->size) {
		a->slots = safe_erealloc(a->slots, a->size * 2, sizeof *a->slots, 0);
		memset(a->slots + a->size, 0, a->size * sizeof *a->slots);
		a->size *= 2;
	}
	a->slots[a->used].key = estrdup(key);
	a->slots[a->used].val = estrdup(val);
	a->used++;
}

static void array_destroy(array *a)
{
	for (size_t i = 0; i < a->used; i++) {
		efree(a->slots[i].key);
		efree(a->slots[i].val);
	}
	efree(a->slots);
}

typedef struct object {
	char *class_name;
	array props;
	struct object *next;
} object;

static object *object_new(const char *class_name, object *next)
{
	object *obj = emalloc(sizeof *obj);
	obj->class_name = estrdup(class_name);
	array_init(&obj->props);
	array_set(&obj->props, "id", "42");
	array_set(&obj->props, "created", "2024-01-01 00:00:00");
	obj->next = next;
	return obj;
}

/* ---- reporting ----------------------------------------------------------- */

static const char *bytes(char buf[32], size_t n) /* 1234567 -> "1,234,567" */
{
	char digits[32];
	int len = snprintf(digits, sizeof digits, "%zu", n), o = 0;
	for (int i = 0; i < len; i++) {
		if (i > 0 && (len - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

static void print_header(void)
{
	printf("%-18s%11s%11s%11s%11s%6s%11s\n", "request", "usage", "peak", "real", "real peak",
	       "segs", "cached");
	printf("%-18s%11s%11s%11s%11s%6s%11s\n", "-----------------", "---------", "---------",
	       "---------", "---------", "----", "---------");
}

static void print_row(const char *uri)
{
	zendmm_heap_stats st = {.size = sizeof st};
	char b[5][32];
	zendmm_stats(NULL, &st);
	printf("%-18s%11s%11s%11s%11s%6zu%11s\n", uri, bytes(b[0], st.usage), bytes(b[1], st.peak),
	       bytes(b[2], st.real_usage), bytes(b[3], st.real_peak), st.segments,
	       bytes(b[4], st.cached_bytes));
}

/* ---- requests ------------------------------------------------------------ */

static void run_request(const char *uri, int scale)
{
	route *r = route_find(uri);
	smart_str body = {NULL, 0, 0};
	array get;
	object *objects = NULL;
	char line[128];

	r->hits++;
	array_init(&get);
	for (int i = 0; i < 50 * scale; i++) {
		char key[32];
		snprintf(key, sizeof key, "param%d", i);
		array_set(&get, key, uri);
	}
	str_append(&body, "<ul>\n");
	for (int i = 0; i < 200 * scale; i++) {
		snprintf(line, sizeof line, "  <li>item %d of %s</li>\n", i, uri);
		str_append(&body, line);
	}
	str_append(&body, "</ul>\n");
	for (int i = 0; i < 40 * scale; i++)
		objects = object_new(i % 2 ? "App\\Model\\User" : "App\\Model\\Post", objects);
	if (scale >= 8) { /* an upload: big enough for a segment of its own */
		char *upload = emalloc((size_t)scale << 17);
		memset(upload, 'u', (size_t)scale << 17);
		efree(upload);
	}
	efree(body.s);          /* "echo"ed and freed */
	array_destroy(&get);    /* unset($_GET) */
	for (object *o = objects; o != NULL && o->next != NULL; o = o->next) {
		object *gone = o->next; /* unset every other object */
		o->next = gone->next;
		array_destroy(&gone->props);
		efree(gone->class_name);
		efree(gone);
	}
	/* the remaining objects are left to the request shutdown */
	if (zend_memory_peak_usage(false) > r->worst_peak)
		r->worst_peak = zend_memory_peak_usage(false);
	print_row(uri);
}

static jmp_buf bailout;

static void fatal_error(zendmm_error_kind kind, const char *message)
{
	(void)kind; /* ZENDMM_ERROR_MEMORY_LIMIT here */
	printf("PHP Fatal error:  %s\n", message);
	fflush(stdout);
	longjmp(bailout, 1);
}

int main(void)
{
	static const struct { const char *uri; int scale; } requests[] = {
		{"GET /", 1}, {"GET /blog?page=2", 4}, {"POST /upload", 12}, {"GET /", 2},
	};
	static volatile size_t rows;
	char b[2][32];

	start_memory_manager();
	printf("zendmm demo: %zu segment, %s bytes in use (the 8 KiB reserve)\n\n",
	       zend_memory_usage(true) / 262144, bytes(b[0], zend_memory_usage(false)));
	print_header();
	for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++) {
		run_request(requests[i].uri, requests[i].scale);
		shutdown_memory_manager(false, false);
	}
	printf("\nafter the last request shutdown: usage %s, real usage %s\n",
	       bytes(b[0], zend_memory_usage(false)), bytes(b[1], zend_memory_usage(true)));

	printf("\npersistent route table (pemalloc, kept across requests):\n");
	for (size_t i = 0; i < nroutes; i++)
		printf("  %-18s %u hit%s, worst peak %s bytes\n", routes[i].uri, routes[i].hits,
		       routes[i].hits == 1 ? "" : "s", bytes(b[0], routes[i].worst_peak));

	/* A request that keeps every row of a big export in memory. */
	printf("\nGET /export with memory_limit = 4M:\n");
	fflush(stdout);
	zend_set_memory_limit(4u << 20);
	zendmm_set_error_handler(fatal_error);
	if (setjmp(bailout) == 0) {
		array rows_arr;
		char row[1000] = {0};
		memset(row, 'x', sizeof row - 1);
		array_init(&rows_arr);
		for (;;) {
			array_set(&rows_arr, "row", row);
			rows++;
		}
	}
	printf("bailed out after %zu rows at %s bytes of segments; the request is ended:\n",
	       (size_t)rows, bytes(b[0], zend_memory_usage(true)));
	shutdown_memory_manager(false, false);
	printf("usage %s, real usage %s: the next request starts clean.\n",
	       bytes(b[0], zend_memory_usage(false)), bytes(b[1], zend_memory_usage(true)));

	zendmm_set_error_handler(NULL);
	for (size_t i = 0; i < nroutes; i++) /* persistent memory is ours to free */
		pefree(routes[i].uri, 1);
	pefree(routes, 1);
	shutdown_memory_manager(true, true);
	return 0;
}
