/* proc: runs the project's binaries as child processes for end-to-end tests.
 * Binaries are found through DROPSHIP_TEST_BUILD (absolute build dir, set by
 * tests/run.sh); DROPSHIP_TEST_ROOT is the repository root. */
#ifndef DROPSHIP_TEST_PROC_H
#define DROPSHIP_TEST_PROC_H
#include <stddef.h>
#include <sys/types.h>

/* Runs argv (argv[0] searched in PATH when it has no '/') with the current
 * environment plus env_extra ("KEY=VALUE" entries, NULL-terminated, may be
 * NULL; they replace variables of the same name), stdin from /dev/null.
 * Captures stdout and stderr into malloc'd NUL-terminated strings the
 * caller frees (out/err may be NULL to discard). A child still running
 * after 120 s is killed. Returns the exit status, 128+signal when killed
 * by a signal, or -1 when it could not be started. */
int proc_run(const char *const argv[], const char *const env_extra[], char **out, char **err);

/* Starts argv in the background like proc_run, with stdout and stderr
 * appended to log_path (inherited when NULL). Returns the pid or -1. */
pid_t proc_spawn(const char *const argv[], const char *const env_extra[], const char *log_path);

/* Polls the file at path until a line containing needle appears, and
 * copies that line (without its newline) into line (may be NULL).
 * Returns 0, or -1 when timeout_ms passed first. */
int proc_wait_line(const char *path, const char *needle, int timeout_ms, char *line, size_t cap);

/* Sends sig (0: send nothing, just wait) and waits up to timeout_ms for the
 * process to exit, then SIGKILLs it. Returns its exit status, 128+signal
 * when a signal ended it, or -1 when pid is not our child. */
int proc_stop(pid_t pid, int sig, int timeout_ms);

/* DROPSHIP_TEST_BUILD/bin (default build/bin), in one of 4 static buffers
 * used in turn: valid until the 4th next call. */
const char *proc_build_path(const char *bin);

#endif
