/*
 * zendmm_alloc.h - PHP's allocation macros on top of libzendmm.
 *
 * Hand-written counterpart of PHP 8.2's Zend/zend_alloc.h, NTS. By default it
 * is the release build's: ZEND_FILE_LINE_* expand to nothing and every macro
 * is a direct call into the release ABI declared in zendmm.h.
 *
 * Compiled with ZEND_DEBUG set to non-zero, or with ZENDMM_DEBUG defined, it
 * is the debug build's: emalloc() & co. call the zendmm_*_dbg entry points with
 * __FILE__ and __LINE__, and the _rel forms pass on the location their
 * function received through ZEND_FILE_LINE_DC, with their own place as the
 * origin, exactly as zend_alloc.h does. zendmm then reports the blocks still
 * in use at a non-silent shutdown (README, "Leak reports"). Code built either
 * way can share one heap; the release ABI is the same in both.
 *
 * What differs from PHP 8.2:
 *   - zendmm is the PHP 5.3 allocator: there are no size-class entry points
 *     (_emalloc_8 ... _emalloc_3072, _emalloc_large, _emalloc_huge), so
 *     emalloc() never dispatches on __builtin_constant_p(size) and the
 *     emalloc_large, efree_huge, efree_size and the like fall back to
 *     _emalloc/_efree.
 *   - Every block has an 8-byte header (ZEND_MM_OVERHEAD is 8, not 0).
 *   - The debug entry points have their own names, "zendmm" + the release
 *     name + "_dbg" (zendmm_emalloc_dbg, zendmm_zend_mm_alloc_dbg, ...), so
 *     the release names keep their release signatures in every build.
 *   - No fallible (femalloc & co.) or delayed-OOM macros.
 *
 * zendmm.h also exports pemalloc, pefree, pecalloc, perealloc and pestrdup as
 * real functions. The function-like macros below are defined after it is
 * included, so `pemalloc(n, 1)` is the macro and `(pemalloc)(n, 1)` still
 * calls the function.
 */
#ifndef ZENDMM_ALLOC_H
#define ZENDMM_ALLOC_H

#include <stdlib.h> /* free() and realloc() for the persistent forms */

#include "zendmm.h"

/* Sizes (PHP 5.3 layout on LP64). */
#ifndef ZEND_MM_ALIGNMENT
# define ZEND_MM_ALIGNMENT ((size_t)16)
#endif
#define ZEND_MM_ALIGNMENT_MASK (~(ZEND_MM_ALIGNMENT - 1))
#define ZEND_MM_ALIGNED_SIZE(size) (((size) + ZEND_MM_ALIGNMENT - 1) & ZEND_MM_ALIGNMENT_MASK)
#define ZEND_MM_ALIGNED_SIZE_EX(size, alignment) \
	(((size) + ((alignment) - 1)) & ~((alignment) - 1))
/* Per-block header (PHP 8.2 release: 0). */
#define ZEND_MM_OVERHEAD ((size_t)8)

/*
 * Locations (zend_portability.h's ZEND_FILE_LINE_* family). A function that
 * relays its caller's location declares it with ZEND_FILE_LINE_DC and is
 * called with ZEND_FILE_LINE_CC; inside, the _rel macros use it.
 */
#if ZEND_DEBUG || defined(ZENDMM_DEBUG)
# define ZENDMM_DEBUG_ABI 1
# define ZEND_FILE_LINE_D               const char *__zend_filename, const uint32_t __zend_lineno
# define ZEND_FILE_LINE_DC              , ZEND_FILE_LINE_D
# define ZEND_FILE_LINE_ORIG_D          const char *__zend_orig_filename, const uint32_t __zend_orig_lineno
# define ZEND_FILE_LINE_ORIG_DC         , ZEND_FILE_LINE_ORIG_D
# define ZEND_FILE_LINE_RELAY_C         __zend_filename, __zend_lineno
# define ZEND_FILE_LINE_RELAY_CC        , ZEND_FILE_LINE_RELAY_C
# define ZEND_FILE_LINE_C               __FILE__, __LINE__
# define ZEND_FILE_LINE_CC              , ZEND_FILE_LINE_C
# define ZEND_FILE_LINE_EMPTY_C         NULL, 0
# define ZEND_FILE_LINE_EMPTY_CC        , ZEND_FILE_LINE_EMPTY_C
# define ZEND_FILE_LINE_ORIG_RELAY_C    __zend_orig_filename, __zend_orig_lineno
# define ZEND_FILE_LINE_ORIG_RELAY_CC   , ZEND_FILE_LINE_ORIG_RELAY_C
/* The entry point of a request-memory function, and the location arguments
 * of a plain call (here) and of a relay (the caller's, then here). */
# define ZENDMM_FN(name)                zendmm##name##_dbg
# define ZENDMM_AT                      ZEND_FILE_LINE_CC ZEND_FILE_LINE_EMPTY_CC
# define ZENDMM_REL_AT                  ZEND_FILE_LINE_RELAY_CC ZEND_FILE_LINE_CC
#else
# define ZEND_FILE_LINE_D               void
# define ZEND_FILE_LINE_DC
# define ZEND_FILE_LINE_ORIG_D          void
# define ZEND_FILE_LINE_ORIG_DC
# define ZEND_FILE_LINE_RELAY_C
# define ZEND_FILE_LINE_RELAY_CC
# define ZEND_FILE_LINE_C
# define ZEND_FILE_LINE_CC
# define ZEND_FILE_LINE_EMPTY_C
# define ZEND_FILE_LINE_EMPTY_CC
# define ZEND_FILE_LINE_ORIG_RELAY_C
# define ZEND_FILE_LINE_ORIG_RELAY_CC
# define ZENDMM_FN(name)                name
# define ZENDMM_AT
# define ZENDMM_REL_AT
#endif

/* Request memory: freed at the latest by the next request shutdown. */
#define emalloc(size)                            ZENDMM_FN(_emalloc)((size) ZENDMM_AT)
#define emalloc_large(size)                      ZENDMM_FN(_emalloc)((size) ZENDMM_AT)
#define emalloc_huge(size)                       ZENDMM_FN(_emalloc)((size) ZENDMM_AT)
#define safe_emalloc(nmemb, size, offset)        ZENDMM_FN(_safe_emalloc)((nmemb), (size), (offset) ZENDMM_AT)
#define efree(ptr)                               ZENDMM_FN(_efree)((ptr) ZENDMM_AT)
#define efree_large(ptr)                         ZENDMM_FN(_efree)((ptr) ZENDMM_AT)
#define efree_huge(ptr)                          ZENDMM_FN(_efree)((ptr) ZENDMM_AT)
#define efree_size(ptr, size)                    ((void)(size), ZENDMM_FN(_efree)((ptr) ZENDMM_AT))
#define ecalloc(nmemb, size)                     ZENDMM_FN(_ecalloc)((nmemb), (size) ZENDMM_AT)
#define erealloc(ptr, size)                      ZENDMM_FN(_erealloc)((ptr), (size) ZENDMM_AT)
#define erealloc2(ptr, size, copy_size)          ZENDMM_FN(_erealloc2)((ptr), (size), (copy_size) ZENDMM_AT)
#define safe_erealloc(ptr, nmemb, size, offset)  ZENDMM_FN(_safe_erealloc)((ptr), (nmemb), (size), (offset) ZENDMM_AT)
/* As in PHP 8.2, the recoverable forms are the plain ones (they never return NULL). */
#define erealloc_recoverable(ptr, size)          erealloc((ptr), (size))
#define erealloc2_recoverable(ptr, size, copy_size) erealloc2((ptr), (size), (copy_size))
#define estrdup(s)                               ZENDMM_FN(_estrdup)((s) ZENDMM_AT)
#define estrndup(s, length)                      ZENDMM_FN(_estrndup)((s), (length) ZENDMM_AT)
/* Usable size of the block (>= the requested size). PHP 5.3 release builds
 * returned the true size, header included. No location needed. */
#define zend_mem_block_size(ptr)                 _zend_mem_block_size((ptr))

/* Relay forms: in a debug build the location is the one the enclosing
 * function received (ZEND_FILE_LINE_DC), the origin is here. */
#define emalloc_rel(size)                        ZENDMM_FN(_emalloc)((size) ZENDMM_REL_AT)
#define safe_emalloc_rel(nmemb, size, offset)    ZENDMM_FN(_safe_emalloc)((nmemb), (size), (offset) ZENDMM_REL_AT)
#define efree_rel(ptr)                           ZENDMM_FN(_efree)((ptr) ZENDMM_REL_AT)
#define efree_size_rel(ptr, size)                ((void)(size), ZENDMM_FN(_efree)((ptr) ZENDMM_REL_AT))
#define ecalloc_rel(nmemb, size)                 ZENDMM_FN(_ecalloc)((nmemb), (size) ZENDMM_REL_AT)
#define erealloc_rel(ptr, size)                  ZENDMM_FN(_erealloc)((ptr), (size) ZENDMM_REL_AT)
#define erealloc2_rel(ptr, size, copy_size)      ZENDMM_FN(_erealloc2)((ptr), (size), (copy_size) ZENDMM_REL_AT)
#define erealloc_recoverable_rel(ptr, size)      erealloc_rel((ptr), (size))
#define erealloc2_recoverable_rel(ptr, size, copy_size) erealloc2_rel((ptr), (size), (copy_size))
#define safe_erealloc_rel(ptr, nmemb, size, offset) ZENDMM_FN(_safe_erealloc)((ptr), (nmemb), (size), (offset) ZENDMM_REL_AT)
#define estrdup_rel(s)                           ZENDMM_FN(_estrdup)((s) ZENDMM_REL_AT)
#define estrndup_rel(s, length)                  ZENDMM_FN(_estrndup)((s), (length) ZENDMM_REL_AT)
#define zend_mem_block_size_rel(ptr)             _zend_mem_block_size((ptr))

/* Persistent (libc, survives request shutdown) or request memory. The
 * persistent forms end the process with "Out of memory" (exit 1) on failure,
 * except the _recoverable ones, which are plain realloc() as in PHP. */
#define pemalloc(size, persistent) \
	((persistent) ? __zend_malloc((size)) : emalloc((size)))
#define safe_pemalloc(nmemb, size, offset, persistent) \
	((persistent) ? _safe_malloc((nmemb), (size), (offset)) : safe_emalloc((nmemb), (size), (offset)))
#define pefree(ptr, persistent) \
	((persistent) ? free((ptr)) : efree((ptr)))
#define pefree_size(ptr, size, persistent) \
	((persistent) ? free((ptr)) : efree_size((ptr), (size)))
#define pecalloc(nmemb, size, persistent) \
	((persistent) ? __zend_calloc((nmemb), (size)) : ecalloc((nmemb), (size)))
#define perealloc(ptr, size, persistent) \
	((persistent) ? __zend_realloc((ptr), (size)) : erealloc((ptr), (size)))
#define perealloc2(ptr, size, copy_size, persistent) \
	((persistent) ? __zend_realloc((ptr), (size)) : erealloc2((ptr), (size), (copy_size)))
#define safe_perealloc(ptr, nmemb, size, offset, persistent) \
	((persistent) ? _safe_realloc((ptr), (nmemb), (size), (offset)) \
	              : safe_erealloc((ptr), (nmemb), (size), (offset)))
#define perealloc_recoverable(ptr, size, persistent) \
	((persistent) ? realloc((ptr), (size)) : erealloc_recoverable((ptr), (size)))
#define perealloc2_recoverable(ptr, size, copy_size, persistent) \
	((persistent) ? realloc((ptr), (size)) : erealloc2_recoverable((ptr), (size), (copy_size)))
#define pestrdup(s, persistent) \
	((persistent) ? __zend_strdup((s)) : estrdup((s)))
#define pestrndup(s, length, persistent) \
	((persistent) ? zend_strndup((s), (length)) : estrndup((s), (length)))

#define pemalloc_rel(size, persistent) \
	((persistent) ? __zend_malloc((size)) : emalloc_rel((size)))
#define pefree_rel(ptr, persistent) \
	((persistent) ? free((ptr)) : efree_rel((ptr)))
#define pecalloc_rel(nmemb, size, persistent) \
	((persistent) ? __zend_calloc((nmemb), (size)) : ecalloc_rel((nmemb), (size)))
#define perealloc_rel(ptr, size, persistent) \
	((persistent) ? __zend_realloc((ptr), (size)) : erealloc_rel((ptr), (size)))
#define perealloc2_rel(ptr, size, copy_size, persistent) \
	((persistent) ? __zend_realloc((ptr), (size)) : erealloc2_rel((ptr), (size), (copy_size)))
#define perealloc_recoverable_rel(ptr, size, persistent) \
	((persistent) ? realloc((ptr), (size)) : erealloc_recoverable_rel((ptr), (size)))
#define perealloc2_recoverable_rel(ptr, size, copy_size, persistent) \
	((persistent) ? realloc((ptr), (size)) : erealloc2_recoverable_rel((ptr), (size), (copy_size)))
/* PHP uses strdup() here; __zend_strdup avoids needing a POSIX declaration. */
#define pestrdup_rel(s, persistent) \
	((persistent) ? __zend_strdup((s)) : estrdup_rel((s)))

/* Explicit heaps (zend_mm_startup()). */
#define zend_mm_alloc(heap, size)                  ZENDMM_FN(_zend_mm_alloc)((heap), (size) ZENDMM_AT)
#define zend_mm_free(heap, p)                      ZENDMM_FN(_zend_mm_free)((heap), (p) ZENDMM_AT)
#define zend_mm_realloc(heap, p, size)             ZENDMM_FN(_zend_mm_realloc)((heap), (p), (size) ZENDMM_AT)
#define zend_mm_realloc2(heap, p, size, copy_size) ZENDMM_FN(_zend_mm_realloc2)((heap), (p), (size), (copy_size) ZENDMM_AT)
#define zend_mm_block_size(heap, p)                _zend_mm_block_size((heap), (p))

#define zend_mm_alloc_rel(heap, size)              ZENDMM_FN(_zend_mm_alloc)((heap), (size) ZENDMM_REL_AT)
#define zend_mm_free_rel(heap, p)                  ZENDMM_FN(_zend_mm_free)((heap), (p) ZENDMM_REL_AT)
#define zend_mm_realloc_rel(heap, p, size)         ZENDMM_FN(_zend_mm_realloc)((heap), (p), (size) ZENDMM_REL_AT)
#define zend_mm_realloc2_rel(heap, p, size, copy_size) ZENDMM_FN(_zend_mm_realloc2)((heap), (p), (size), (copy_size) ZENDMM_REL_AT)
#define zend_mm_block_size_rel(heap, p)            _zend_mm_block_size((heap), (p))

#endif /* ZENDMM_ALLOC_H */
