#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "mem/mem.h"

/* No logging module here: it may itself need memory. One write(2). */
void mem_oom(void)
{
	static const char msg[] = "level=error msg=\"out of memory; aborting\"\n";
	ssize_t r = write(STDERR_FILENO, msg, sizeof msg - 1);
	(void)r;
	abort();
}

void *mem_alloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (!p)
		mem_oom();
	return p;
}

void *mem_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		mem_oom();
	return p;
}

void *mem_realloc(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);
	if (!q)
		mem_oom();
	return q;
}

char *mem_strdup(const char *s)
{
	char *d = strdup(s);
	if (!d)
		mem_oom();
	return d;
}

char *mem_strndup(const char *s, size_t n)
{
	char *d = strndup(s, n);
	if (!d)
		mem_oom();
	return d;
}

char *mem_strdup_or_null(const char *s)
{
	return s ? mem_strdup(s) : NULL;
}

void mem_use_for_libraries(void)
{
	json_set_alloc_funcs(mem_alloc, free);
	event_set_mem_functions(mem_alloc, mem_realloc, free);
}
