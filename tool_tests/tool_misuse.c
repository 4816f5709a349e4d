/*
 * tool_misuse.c - misuses request memory on purpose, one way per run, so
 * that make test-valgrind and make test-asan can assert the tool reports it.
 * Not a C test of its own (c_tests/ runs without a tool, where nothing here
 * would be noticed); tool_tests/run.sh runs it.
 *
 *   tool_misuse CASE
 *
 * CASE is one of:
 *   clean            the same allocations, used correctly: no report
 *   overflow-small   writes 1 byte past the usable bytes of emalloc(100)
 *   overflow-large   the same past emalloc(5000)
 *   underflow        writes 1 byte before emalloc(100)
 *   uaf-small        reads the first byte of emalloc(100) after efree
 *   uaf-large        reads byte 100 of emalloc(5000) after efree
 *   stale-realloc    reads a block through its old pointer after erealloc moved it
 *   after-shutdown   reads a block after the request ended
 *   no-shutdown      exits with request blocks no pointer reaches and the
 *                    request not ended: memcheck's leak check reports them
 *
 * Each misuse happens once, then the program exits 0 without touching the
 * heap again (zendmm would otherwise find the damage itself).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zendmm_alloc.h"

/* volatile: the compiler must not drop or move the bad accesses. */
static void poke(volatile unsigned char *p) { *p = 0x5a; }
static unsigned char peek(volatile unsigned char *p) { return *p; }

int main(int argc, char **argv)
{
	const char *what = argc == 2 ? argv[1] : "";
	unsigned char *p, *q;
	unsigned char sink = 0;

	start_memory_manager();
	if (strcmp(what, "clean") == 0) {
		p = emalloc(100);
		poke(p + zend_mem_block_size(p) - 1);
		efree(p);
		p = emalloc(5000);
		memset(p, 1, zend_mem_block_size(p));
		q = emalloc(100);
		p = erealloc(p, 100000); /* moves: q is in the way */
		p = erealloc(p, 200000); /* grows in place */
		p = erealloc(p, 3000);   /* shrinks in place */
		/* Branches on the kept bytes: memcheck reports them if realloc
		 * lost their definedness. */
		for (size_t i = 0; i < 3000; i++)
			if (peek(p + i) != 1)
				return 3;
		sink = peek(p + 2999);
		efree(q);
		efree(p);
		/* Dropped, then released by the request end: not leaks. */
		for (int i = 0; i < 10; i++)
			poke(emalloc(1000));
		shutdown_memory_manager(1, 0);
	} else if (strcmp(what, "overflow-small") == 0 || strcmp(what, "overflow-large") == 0) {
		p = emalloc(what[9] == 's' ? 100 : 5000);
		poke(p + zend_mem_block_size(p));
	} else if (strcmp(what, "underflow") == 0) {
		p = emalloc(100);
		poke(p - 1);
	} else if (strcmp(what, "uaf-small") == 0) {
		p = emalloc(100);
		memset(p, 1, 100);
		efree(p);
		sink = peek(p);
	} else if (strcmp(what, "uaf-large") == 0) {
		p = emalloc(5000);
		memset(p, 1, 5000);
		efree(p);
		sink = peek(p + 100);
	} else if (strcmp(what, "stale-realloc") == 0) {
		p = emalloc(100);
		memset(p, 1, 100);
		q = emalloc(100); /* a used neighbour: p cannot grow in place */
		q = erealloc(p, 100000);
		if (q == p) {
			fprintf(stderr, "tool_misuse: erealloc did not move the block\n");
			return 2;
		}
		sink = peek(p + 8);
	} else if (strcmp(what, "after-shutdown") == 0) {
		p = emalloc(100);
		memset(p, 1, 100);
		shutdown_memory_manager(1, 0);
		sink = peek(p + 8);
	} else if (strcmp(what, "no-shutdown") == 0) {
		for (int i = 0; i < 3; i++)
			poke(emalloc(1000));
	} else {
		fprintf(stderr, "usage: tool_misuse clean|overflow-small|overflow-large|underflow|"
		                "uaf-small|uaf-large|stale-realloc|after-shutdown|no-shutdown\n");
		return 2;
	}
	printf("tool_misuse %s done (%d)\n", what, sink);
	return 0;
}
