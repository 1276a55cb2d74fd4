/* mem: allocation that cannot fail. dropship's one out-of-memory policy:
 * the process writes one line to stderr and aborts.
 *
 * Why: on Linux an allocation rarely fails before the OOM killer acts, so
 * code that "handles" it is code that never runs and is never tested; a
 * reply of 500 needs memory too; and every write is one transaction, so an
 * abort leaves nothing half done (the supervisor restarts the process and
 * unsent messages are in the outbox). Callers therefore never check the
 * results of these functions. jansson and libevent are set to use them too
 * (mem_use_for_libraries), so json_* constructors and evbuffer_new() fail
 * only on bad input. */
#ifndef DROPSHIP_MEM_H
#define DROPSHIP_MEM_H
#include <stddef.h>

/* malloc/calloc/realloc/strdup/strndup that abort instead of returning NULL. */
void *mem_alloc(size_t size) __attribute__((malloc, returns_nonnull));
void *mem_calloc(size_t n, size_t size) __attribute__((malloc, returns_nonnull));
void *mem_realloc(void *p, size_t size) __attribute__((returns_nonnull));
char *mem_strdup(const char *s) __attribute__((malloc, returns_nonnull));
char *mem_strndup(const char *s, size_t n) __attribute__((malloc, returns_nonnull));
/* For a library call that returned NULL for want of memory: the same end. */
void mem_oom(void) __attribute__((noreturn));

/* mem_strdup, or NULL for NULL. */
char *mem_strdup_or_null(const char *s);

/* Makes jansson and libevent allocate through mem_alloc. Call once at
 * start-up, before any json_* or libevent call (not thread-safe). */
void mem_use_for_libraries(void);

#endif
