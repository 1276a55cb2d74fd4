/* ctl: runs build/dropshipctl for end-to-end tests and keeps what it said. */
#ifndef DROPSHIP_TEST_CTL_H
#define DROPSHIP_TEST_CTL_H

/* Most arguments one run takes; more are dropped. */
#define CTL_ARGS_MAX 32

/* One finished run. */
struct ctl_run {
	int rc;          /* exit status, 128+signal when killed, -1 when not started */
	char *out;       /* stdout, malloc'd (free with ctl_run_free) */
	char *err;       /* stderr, likewise */
};

/* Runs dropshipctl with args (NULL-terminated) and db as
 * DROPSHIP_DATABASE_URL (NULL: none), stdin from the file in_path (NULL:
 * /dev/null). DROPSHIP_MIGRATIONS_DIR and DROPSHIP_SQL_DIR are set empty so
 * that the outer environment cannot pick the directories. The command, its
 * exit status and output are printed into the test log. */
struct ctl_run ctl_argv(const char *db, const char *in_path, const char *const *args);

/* The same with the arguments listed after db, then NULL. */
__attribute__((sentinel)) struct ctl_run ctl(const char *db, ...);

/* The same, for a run whose exit status is all that matters. */
__attribute__((sentinel)) int ctl_rc(const char *db, ...);

/* Frees the output and sets both pointers to NULL. */
void ctl_run_free(struct ctl_run *r);

#endif
