/*
 * zendmm_alloc.h - PHP's allocation macros on top of libzendmm.
 *
 * Hand-written counterpart of PHP 8.2's Zend/zend_alloc.h for a release
 * (non-debug, NTS) build: ZEND_FILE_LINE_* expand to nothing, so every macro
 * is a direct call into the exported C ABI declared in zendmm.h.
 *
 * What differs from PHP 8.2:
 *   - zendmm is the PHP 5.3 allocator: there are no size-class entry points
 *     (_emalloc_8 ... _emalloc_3072, _emalloc_large, _emalloc_huge), so
 *     emalloc() never dispatches on __builtin_constant_p(size) and the
 *     emalloc_large, efree_huge, efree_size and the like fall back to
 *     _emalloc/_efree.
 *   - Every block has a 16-byte header (ZEND_MM_OVERHEAD is 16, not 0).
 *   - The _rel ("relay") forms are the plain forms: they only differ from
 *     them in debug builds, which zendmm does not have.
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
#define ZEND_MM_OVERHEAD ((size_t)16)

/* Request memory: freed at the latest by the next request shutdown. */
#define emalloc(size)                            _emalloc((size))
#define emalloc_large(size)                      _emalloc((size))
#define emalloc_huge(size)                       _emalloc((size))
#define safe_emalloc(nmemb, size, offset)        _safe_emalloc((nmemb), (size), (offset))
#define efree(ptr)                               _efree((ptr))
#define efree_large(ptr)                         _efree((ptr))
#define efree_huge(ptr)                          _efree((ptr))
#define efree_size(ptr, size)                    ((void)(size), _efree((ptr)))
#define ecalloc(nmemb, size)                     _ecalloc((nmemb), (size))
#define erealloc(ptr, size)                      _erealloc((ptr), (size))
#define erealloc2(ptr, size, copy_size)          _erealloc2((ptr), (size), (copy_size))
#define safe_erealloc(ptr, nmemb, size, offset)  _safe_erealloc((ptr), (nmemb), (size), (offset))
/* As in PHP 8.2, the recoverable forms are the plain ones (they never return NULL). */
#define erealloc_recoverable(ptr, size)          _erealloc((ptr), (size))
#define erealloc2_recoverable(ptr, size, copy_size) _erealloc2((ptr), (size), (copy_size))
#define estrdup(s)                               _estrdup((s))
#define estrndup(s, length)                      _estrndup((s), (length))
/* Usable size of the block (>= the requested size). PHP 5.3 release builds
 * returned the true size, header included. */
#define zend_mem_block_size(ptr)                 _zend_mem_block_size((ptr))

/* Relay forms: identical in a release build. */
#define emalloc_rel(size)                        _emalloc((size))
#define safe_emalloc_rel(nmemb, size, offset)    _safe_emalloc((nmemb), (size), (offset))
#define efree_rel(ptr)                           _efree((ptr))
#define efree_size_rel(ptr, size)                ((void)(size), _efree((ptr)))
#define ecalloc_rel(nmemb, size)                 _ecalloc((nmemb), (size))
#define erealloc_rel(ptr, size)                  _erealloc((ptr), (size))
#define erealloc2_rel(ptr, size, copy_size)      _erealloc2((ptr), (size), (copy_size))
#define erealloc_recoverable_rel(ptr, size)      _erealloc((ptr), (size))
#define erealloc2_recoverable_rel(ptr, size, copy_size) _erealloc2((ptr), (size), (copy_size))
#define safe_erealloc_rel(ptr, nmemb, size, offset) _safe_erealloc((ptr), (nmemb), (size), (offset))
#define estrdup_rel(s)                           _estrdup((s))
#define estrndup_rel(s, length)                  _estrndup((s), (length))
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
#define zend_mm_alloc(heap, size)                  _zend_mm_alloc((heap), (size))
#define zend_mm_free(heap, p)                      _zend_mm_free((heap), (p))
#define zend_mm_realloc(heap, p, size)             _zend_mm_realloc((heap), (p), (size))
#define zend_mm_realloc2(heap, p, size, copy_size) _zend_mm_realloc2((heap), (p), (size), (copy_size))
#define zend_mm_block_size(heap, p)                _zend_mm_block_size((heap), (p))

#define zend_mm_alloc_rel(heap, size)              _zend_mm_alloc((heap), (size))
#define zend_mm_free_rel(heap, p)                  _zend_mm_free((heap), (p))
#define zend_mm_realloc_rel(heap, p, size)         _zend_mm_realloc((heap), (p), (size))
#define zend_mm_realloc2_rel(heap, p, size, copy_size) _zend_mm_realloc2((heap), (p), (size), (copy_size))
#define zend_mm_block_size_rel(heap, p)            _zend_mm_block_size((heap), (p))

#endif /* ZENDMM_ALLOC_H */
