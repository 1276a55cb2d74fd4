#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "support/ctl.h"
#include "support/proc.h"

struct ctl_run ctl_argv(const char *db, const char *in_path, const char *const *args)
{
	const char *argv[CTL_ARGS_MAX + 7];
	int n = 0;
	if (in_path) {
		argv[n++] = "sh";
		argv[n++] = "-c";
		argv[n++] = "f=$1; shift; exec \"$@\" < \"$f\"";
		argv[n++] = "sh";
		argv[n++] = in_path;
	}
	int first = n;
	argv[n++] = proc_build_path("dropshipctl");
	for (int i = 0; i < CTL_ARGS_MAX && args[i]; i++)
		argv[n++] = args[i];
	argv[n] = NULL;

	char url[1100];
	snprintf(url, sizeof url, "DROPSHIP_DATABASE_URL=%s", db ? db : "");
	const char *env[] = { "DROPSHIP_MIGRATIONS_DIR=", "DROPSHIP_SQL_DIR=", db ? url : NULL, NULL };
	struct ctl_run r = { 0, NULL, NULL };
	r.rc = proc_run(argv, env, &r.out, &r.err);
	printf("\n$ dropshipctl");
	for (int i = first + 1; argv[i]; i++)
		printf(" %s", argv[i]);
	printf("%s%s  -> exit %d\n%s%s", in_path ? " < " : "", in_path ? in_path : "", r.rc,
	       r.out ? r.out : "", r.err ? r.err : "");
	return r;
}

/* Copies the arguments up to NULL (at most CTL_ARGS_MAX) into args, NULL-terminated. */
static void ctl_collect(va_list ap, const char **args)
{
	int n = 0;
	for (const char *a; n < CTL_ARGS_MAX && (a = va_arg(ap, const char *)) != NULL;)
		args[n++] = a;
	args[n] = NULL;
}

struct ctl_run ctl(const char *db, ...)
{
	const char *args[CTL_ARGS_MAX + 1];
	va_list ap;
	va_start(ap, db);
	ctl_collect(ap, args);
	va_end(ap);
	return ctl_argv(db, NULL, args);
}

int ctl_rc(const char *db, ...)
{
	const char *args[CTL_ARGS_MAX + 1];
	va_list ap;
	va_start(ap, db);
	ctl_collect(ap, args);
	va_end(ap);
	struct ctl_run r = ctl_argv(db, NULL, args);
	ctl_run_free(&r);
	return r.rc;
}

void ctl_run_free(struct ctl_run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}
