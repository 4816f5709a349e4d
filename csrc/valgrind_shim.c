/* Valgrind client requests for src/tool.rs.
 *
 * The requests are macros of inline assembly in valgrind.h and memcheck.h,
 * so Rust reaches them through these functions. Outside valgrind each is a
 * handful of instructions that leave the default result; zendmm calls them
 * only after RUNNING_ON_VALGRIND said yes at load time.
 *
 * Built without the headers (ZENDMM_NO_VALGRIND, see build.rs), running()
 * answers 0 and zendmm never calls the others. */

#include <stddef.h>

#ifndef ZENDMM_NO_VALGRIND
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#endif

/* Running under valgrind's memcheck? Other tools (callgrind, massif, ...)
 * ignore memcheck's requests, and zendmm must then keep its own fast paths:
 * only memcheck answers GET_VBITS with 1. */
unsigned zendmm_vg_running(void)
{
#ifdef ZENDMM_NO_VALGRIND
	return 0;
#else
	char byte = 0, bits = 0;
	if (!RUNNING_ON_VALGRIND)
		return 0;
	return VALGRIND_GET_VBITS(&byte, &bits, 1) == 1;
#endif
}

#ifndef ZENDMM_NO_VALGRIND

/* +1 disables error reporting for this thread, -1 re-enables it (nesting). */
void zendmm_vg_quiet(int on)
{
	if (on)
		VALGRIND_DISABLE_ERROR_REPORTING;
	else
		VALGRIND_ENABLE_ERROR_REPORTING;
}

/* No redzone: zendmm marks its headers noaccess itself; not zeroed. */
void zendmm_vg_malloclike(const void *p, size_t n)
{
	VALGRIND_MALLOCLIKE_BLOCK(p, n, 0, 0);
}

void zendmm_vg_freelike(const void *p)
{
	VALGRIND_FREELIKE_BLOCK(p, 0);
}

void zendmm_vg_resize(const void *p, size_t old_size, size_t new_size)
{
	VALGRIND_RESIZEINPLACE_BLOCK(p, old_size, new_size, 0);
}

void zendmm_vg_noaccess(const void *p, size_t n)
{
	(void)VALGRIND_MAKE_MEM_NOACCESS(p, n);
}

void zendmm_vg_undefined(const void *p, size_t n)
{
	(void)VALGRIND_MAKE_MEM_UNDEFINED(p, n);
}

/* A segment taken from malloc is one malloc'd block to memcheck, which
 * then describes an access anywhere in the segment by it, not by the
 * zendmm block around the address (which of the two it names depends on
 * its hash table's order). Shrinking the malloc'd block to the segment's
 * links keeps them scanned by the leak checker and leaves the blocks to
 * describe the rest. Quiet: p may be mmapped, unknown to memcheck, and
 * then nothing changes. */
void zendmm_vg_shrink_chunk(const void *p, size_t n, size_t keep)
{
	VALGRIND_DISABLE_ERROR_REPORTING;
	VALGRIND_RESIZEINPLACE_BLOCK(p, n, keep, 0);
	VALGRIND_ENABLE_ERROR_REPORTING;
}

/* Undoes zendmm_vg_shrink_chunk before the storage frees or reallocs p
 * (valgrind's realloc copies the block's recorded size); a no-op if p was
 * not shrunk. The grown bytes are undefined. */
void zendmm_vg_grow_chunk(const void *p, size_t keep, size_t n)
{
	VALGRIND_DISABLE_ERROR_REPORTING;
	VALGRIND_RESIZEINPLACE_BLOCK(p, keep, n, 0);
	VALGRIND_ENABLE_ERROR_REPORTING;
}

/* 1 on success (memcheck.h's convention). */
unsigned zendmm_vg_get_vbits(const void *p, void *bits, size_t n)
{
	return (unsigned)VALGRIND_GET_VBITS(p, bits, n);
}

unsigned zendmm_vg_set_vbits(const void *p, const void *bits, size_t n)
{
	return (unsigned)VALGRIND_SET_VBITS(p, bits, n);
}

#else

void zendmm_vg_quiet(int on) { (void)on; }
void zendmm_vg_malloclike(const void *p, size_t n) { (void)p; (void)n; }
void zendmm_vg_freelike(const void *p) { (void)p; }
void zendmm_vg_resize(const void *p, size_t o, size_t n) { (void)p; (void)o; (void)n; }
void zendmm_vg_noaccess(const void *p, size_t n) { (void)p; (void)n; }
void zendmm_vg_undefined(const void *p, size_t n) { (void)p; (void)n; }
void zendmm_vg_shrink_chunk(const void *p, size_t n, size_t k) { (void)p; (void)n; (void)k; }
void zendmm_vg_grow_chunk(const void *p, size_t k, size_t n) { (void)p; (void)k; (void)n; }
unsigned zendmm_vg_get_vbits(const void *p, void *b, size_t n) { (void)p; (void)b; (void)n; return 0; }
unsigned zendmm_vg_set_vbits(const void *p, const void *b, size_t n) { (void)p; (void)b; (void)n; return 0; }

#endif
