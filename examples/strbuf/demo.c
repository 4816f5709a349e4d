/*
 * demo.c - plays PHP's part for the strbuf library: starts the memory
 * manager, runs MINIT, serves a few requests (RINIT, the work, RSHUTDOWN,
 * then the request shutdown of the memory manager), and ends with MSHUTDOWN.
 *
 * After each request it prints what memory_get_usage() and
 * memory_get_usage(true) would say. The third request "forgets" to efree
 * its page, as buggy extensions do: the request shutdown reclaims it all the
 * same, while the registry, in persistent memory, keeps counting.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <zendmm_alloc.h>

#include "strbuf.h"

static const struct {
	const char *uri;
	int rows;
} requests[] = {{"/", 100}, {"/products", 1000}, {"/products", 1000}, {"/catalogue", 10000}};
#define NREQUESTS (sizeof requests / sizeof requests[0])

static void print_usage(const char *when)
{
	printf("  %-21s usage %8zu  real %8zu  peak %8zu\n", when,
	       zend_memory_usage(false), zend_memory_usage(true),
	       zend_memory_peak_usage(false));
}

/* One request: builds a page of `rows` lines and a log line in request
 * memory, and counts the URI in the persistent registry. */
static void serve(unsigned n, const char *uri, int rows, bool forget_to_free)
{
	strbuf_request_startup(); /* RINIT */

	strbuf page = STRBUF_INIT;
	strbuf_appendf(&page, "<h1>%s</h1>\n<ul>\n", uri);
	for (int i = 0; i < rows; i++)
		strbuf_appendf(&page, "  <li>row %d of %s</li>\n", i, uri);
	strbuf_append(&page, "</ul>\n");
	char *html = strbuf_steal(&page);

	char *title = estrdup(uri); /* a request-scoped copy, as a zval string would be */
	unsigned hits = strbuf_register(title);

	strbuf log = STRBUF_INIT;
	strbuf_appendf(&log, "GET %s 200 %zu bytes (hit %u)", title, strlen(html), hits);
	char *line = strbuf_steal(&log);

	printf("request %u: %s, %zu strings built%s\n", n, line, strbuf_request_strings(),
	       forget_to_free ? ", the page is never efree'd" : "");
	print_usage("before the shutdown:");

	efree(line);
	efree(title);
	if (!forget_to_free)
		efree(html);
	strbuf_request_shutdown(); /* RSHUTDOWN */

	/* What PHP does after every request: every emalloc'd block is gone,
	 * freed or not. */
	shutdown_memory_manager(true, false);
	print_usage("after the request:");
}

int main(void)
{
	start_memory_manager(); /* reads ZEND_MM_* from the environment */
	zend_set_memory_limit(32 << 20);
	print_usage("at startup:");

	strbuf_module_startup(); /* MINIT */
	for (unsigned i = 0; i < NREQUESTS; i++)
		serve(i + 1, requests[i].uri, requests[i].rows, i == 2);

	printf("registry (persistent memory, kept across requests):\n");
	for (size_t i = 0; i < strbuf_registry_size(); i++)
		printf("  %-10s %u hit(s)\n", strbuf_registry_name(i), strbuf_registry_hits(i));

	strbuf_module_shutdown(); /* MSHUTDOWN */
	shutdown_memory_manager(true, true);
	return 0;
}
