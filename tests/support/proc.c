#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/proc.h"
#include "support/wait.h"

#define PROC_RUN_TIMEOUT_MS 120000

extern char **environ;

struct proc_buf {
	char *data;
	size_t len, cap;
};

static int proc_status(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

/* environ with env_extra on top; a NULL-terminated malloc'd array whose
 * strings are borrowed. Built before fork: the child only execs. */
static char **proc_env(const char *const env_extra[])
{
	size_t n = 0, extra = 0;
	while (environ[n])
		n++;
	while (env_extra && env_extra[extra])
		extra++;
	char **env = calloc(n + extra + 1, sizeof *env);
	if (!env)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t keylen = eq ? (size_t)(eq - environ[i]) + 1 : strlen(environ[i]);
		int replaced = 0;
		for (size_t j = 0; j < extra && !replaced; j++)
			replaced = strncmp(env_extra[j], environ[i], keylen) == 0;
		if (!replaced)
			env[k++] = environ[i];
	}
	for (size_t j = 0; j < extra; j++)
		env[k++] = (char *)env_extra[j];
	return env;
}

/* In the child: never returns. */
static void proc_exec(const char *const argv[], char **env)
{
	int null = open("/dev/null", O_RDONLY);
	if (null >= 0) {
		dup2(null, 0);
		if (null > 2)
			close(null);
	}
	execvpe(argv[0], (char *const *)argv, env);
	fprintf(stderr, "proc: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static int proc_buf_read(int fd, struct proc_buf *b)
{
	if (b->cap - b->len < 4096) {
		size_t cap = b->cap ? b->cap * 2 : 8192;
		char *p = realloc(b->data, cap);
		if (!p)
			return -1;
		b->data = p;
		b->cap = cap;
		b->data[b->len] = '\0';
	}
	ssize_t n = read(fd, b->data + b->len, b->cap - b->len - 1);
	if (n < 0 && errno == EINTR)
		return 1;
	if (n <= 0)
		return -1;
	b->len += (size_t)n;
	b->data[b->len] = '\0';
	return 1;
}

/* Hands the buffer to the caller (an empty string rather than NULL). */
static void proc_buf_take(struct proc_buf *b, char **dst)
{
	if (!dst) {
		free(b->data);
		return;
	}
	*dst = b->data ? b->data : calloc(1, 1);
}

int proc_run(const char *const argv[], const char *const env_extra[], char **out, char **err)
{
	int rc = -1, po[2] = { -1, -1 }, pe[2] = { -1, -1 };
	struct proc_buf bo = { 0 }, be = { 0 };
	char **env = proc_env(env_extra);
	pid_t pid = -1;
	if (out)
		*out = NULL;
	if (err)
		*err = NULL;
	if (!env || pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0)
		goto cleanup;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		goto cleanup;
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		proc_exec(argv, env);
	}
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;

	double deadline = wait_now_ms() + PROC_RUN_TIMEOUT_MS;
	struct pollfd fds[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
	while (fds[0].fd >= 0 || fds[1].fd >= 0) {
		double left = deadline - wait_now_ms();
		if (left <= 0) {
			fprintf(stderr, "proc: %s still running after %d ms; killing it\n", argv[0],
			        PROC_RUN_TIMEOUT_MS);
			kill(pid, SIGKILL);
			break;
		}
		if (poll(fds, 2, (int)left) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++)
			if (fds[i].fd >= 0 && fds[i].revents &&
			    proc_buf_read(fds[i].fd, i == 0 ? &bo : &be) < 0)
				fds[i].fd = -1;
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			goto cleanup;
	rc = proc_status(status);
cleanup:
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
	}
	proc_buf_take(&bo, out);
	proc_buf_take(&be, err);
	free(env);
	return rc;
}

pid_t proc_spawn(const char *const argv[], const char *const env_extra[], const char *log_path)
{
	char **env = proc_env(env_extra);
	int fd = -1;
	pid_t pid = -1;
	if (!env)
		goto cleanup;
	if (log_path) {
		fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0) {
			fprintf(stderr, "proc: cannot open %s: %s\n", log_path, strerror(errno));
			goto cleanup;
		}
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		/* A suite that crashes must not leave servers behind to serve the next one. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		proc_exec(argv, env);
	}
cleanup:
	if (fd >= 0)
		close(fd);
	free(env);
	return pid;
}

/* Looks for needle in the complete lines of path. */
static int proc_find_line(const char *path, const char *needle, char *line, size_t cap)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char *buf = NULL;
	size_t bufcap = 0;
	ssize_t n;
	int found = -1;
	while (found < 0 && (n = getline(&buf, &bufcap, f)) > 0) {
		if (buf[n - 1] != '\n')
			break; /* still being written */
		buf[n - 1] = '\0';
		if (strstr(buf, needle)) {
			found = 0;
			if (line && cap)
				snprintf(line, cap, "%s", buf);
		}
	}
	free(buf);
	fclose(f);
	return found;
}

/* What proc_wait_line looks for, and the line once found. */
struct proc_line_wait {
	const char *path, *needle;
	char *line;
	size_t cap;
};

static bool proc_line_found(void *arg)
{
	struct proc_line_wait *w = arg;
	return proc_find_line(w->path, w->needle, w->line, w->cap) == 0;
}

int proc_wait_line(const char *path, const char *needle, int timeout_ms, char *line, size_t cap)
{
	struct proc_line_wait w = { path, needle, line, cap };
	return wait_until(proc_line_found, &w, timeout_ms, 20) ? 0 : -1;
}

/* A child being waited for: done once it exited (status set) or waitpid failed. */
struct proc_exit_wait {
	pid_t pid;
	int status;
	bool exited, failed;
};

static bool proc_exited(void *arg)
{
	struct proc_exit_wait *w = arg;
	pid_t r = waitpid(w->pid, &w->status, WNOHANG);
	w->exited = r == w->pid;
	w->failed = r < 0 && errno != EINTR;
	return w->exited || w->failed;
}

int proc_stop(pid_t pid, int sig, int timeout_ms)
{
	if (pid <= 0)
		return -1;
	if (sig)
		kill(pid, sig);
	struct proc_exit_wait w = { pid, 0, false, false };
	if (wait_until(proc_exited, &w, timeout_ms, 10))
		return w.exited ? proc_status(w.status) : -1;
	fprintf(stderr, "proc: pid %d did not exit within %d ms; killing it\n", (int)pid, timeout_ms);
	kill(pid, SIGKILL);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return proc_status(status);
}

const char *proc_build_path(const char *bin)
{
	static char bufs[4][1024];
	static unsigned next;
	char *buf = bufs[next++ % 4];
	const char *build = getenv("DROPSHIP_TEST_BUILD");
	snprintf(buf, sizeof bufs[0], "%s/%s", build && *build ? build : "build", bin);
	return buf;
}
