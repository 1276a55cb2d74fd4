#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support/nodes.h"
#include "support/proc.h"
#include "support/wait.h"

/* The template: the configuration docs/deploy.md tells operators to use. */
#define NODES_HAPROXY_TEMPLATE "deploy/haproxy/haproxy.cfg"

const char *nodes_haproxy_bin(void)
{
	static const char *const candidates[] = { "haproxy", "/usr/sbin/haproxy" };
	for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
		const char *argv[] = { candidates[i], "-v", NULL };
		if (proc_run(argv, NULL, NULL, NULL) == 0)
			return candidates[i];
	}
	return NULL;
}

/* n distinct free ports on 127.0.0.1: each socket stays bound until all are
 * chosen. Another process could take one before it is used; unlikely enough. */
static int free_ports(int *ports, int n)
{
	int fds[NODES_MAX + 2], rc = 0, made = 0;
	for (; made < n && rc == 0; made++) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t len = sizeof a;
		fds[made] = socket(AF_INET, SOCK_STREAM, 0);
		if (fds[made] < 0 || bind(fds[made], (struct sockaddr *)&a, sizeof a) < 0 ||
		    getsockname(fds[made], (struct sockaddr *)&a, &len) < 0)
			rc = -1;
		ports[made] = ntohs(a.sin_port);
	}
	for (int i = 0; i < made; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return rc;
}

static int write_node_conf(const struct nodes *c, int i, const char *server_extra)
{
	FILE *f = fopen(c->conf[i], "w");
	if (!f)
		return -1;
	const char *tls = testsrv_tls_dir();
	fprintf(f, "[admin]\nlisten = 127.0.0.1:0\n"
	           "[server]\nlisten = 127.0.0.1:%d\nreuse_port = false\nworkers = 2\n"
	           "tls_cert = %s/server.crt\ntls_key = %s/server.key\n%s\n[database]\npool_size = 4\n",
	        c->node[i].port, tls, tls, server_extra ? server_extra : "");
	return fclose(f) == 0 ? 0 : -1;
}

/* Copies the template into c->haproxy_cfg with the frontend's bind on
 * c->port, the statistics page's on c->stats_port, and one server line per
 * node instead of the example's. Fails when the template no longer has
 * those three places, so that the test cannot drift from the example. */
static int write_haproxy_conf(const struct nodes *c)
{
	char tpl[512], line[1024], section[64] = "";
	const char *root = getenv("DROPSHIP_TEST_ROOT");
	snprintf(tpl, sizeof tpl, "%s/" NODES_HAPROXY_TEMPLATE, root && *root ? root : ".");
	FILE *in = fopen(tpl, "r"), *out = fopen(c->haproxy_cfg, "w");
	int front = 0, stats = 0, servers = 0;
	while (in && out && fgets(line, sizeof line, in)) {
		const char *t = line + strspn(line, " \t");
		if (t == line && *t != '#' && *t != '\n')
			snprintf(section, sizeof section, "%.*s", (int)strcspn(t, " \t\n"), t);
		int is_bind = strncmp(t, "bind ", 5) == 0, is_server = strncmp(t, "server ", 7) == 0;
		if (is_bind && strcmp(section, "frontend") == 0)
			fprintf(out, "    bind 127.0.0.1:%d\n", c->port), front++;
		else if (is_bind && strcmp(section, "listen") == 0)
			fprintf(out, "    bind 127.0.0.1:%d\n", c->stats_port), stats++;
		else if (is_server && strcmp(section, "backend") == 0 && servers++ == 0)
			for (int i = 0; i < c->n; i++)
				fprintf(out, "    server node%d 127.0.0.1:%d\n", i + 1, c->node[i].port);
		else if (!is_server || strcmp(section, "backend") != 0)
			fputs(line, out);
	}
	int ok = in && out && front == 1 && stats == 1 && servers >= 1;
	if (in)
		fclose(in);
	if (out && fclose(out) != 0)
		ok = 0;
	if (!ok)
		fprintf(stderr, "nodes: cannot make %s from %s (frontend binds %d, stats binds %d, servers %d)\n",
		        c->haproxy_cfg, tpl, front, stats, servers);
	return ok ? 0 : -1;
}

int nodes_start_node(struct nodes *c, int i)
{
	struct testsrv *s = &c->node[i];
	char url[1100];
	snprintf(url, sizeof url, "DROPSHIP_DATABASE_URL=%s", c->conninfo);
	snprintf(s->log, sizeof s->log, "%s/node%d.%d.log", c->dir, i + 1, ++c->starts[i]);
	const char *env[] = { url, NULL };
	const char *argv[] = { proc_build_path("dropshipd"), "-c", c->conf[i], NULL };
	char line[512];
	s->pid = proc_spawn(argv, env, s->log);
	if (s->pid > 0 && proc_wait_line(s->log, "msg=\"listening\"", 20000, line, sizeof line) == 0 &&
	    testsrv_wait_status(s, "/readyz", 200, 20000)) {
		const char *p = strstr(line, " admin_port=");
		s->admin_port = p ? (int)strtol(p + 12, NULL, 10) : 0;
		return 0;
	}
	fprintf(stderr, "nodes: node%d did not start or is not ready; its log %s:\n", i + 1, s->log);
	snprintf(line, sizeof line, "tail -n 30 '%s' >&2", s->log);
	if (system(line) != 0)
		fprintf(stderr, "nodes: no log\n");
	nodes_stop_node(c, i, SIGKILL);
	return -1;
}

int nodes_stop_node(struct nodes *c, int i, int sig)
{
	if (c->node[i].pid <= 0)
		return -1;
	int rc = proc_stop(c->node[i].pid, sig, 30000);
	c->node[i].pid = 0;
	return rc;
}

static int start_haproxy(struct nodes *c)
{
	const char *bin = nodes_haproxy_bin();
	if (!bin) {
		fprintf(stderr, "nodes: haproxy is not installed\n");
		return -1;
	}
	/* -db: in the foreground, logging (the template's `log stdout`) into the file. */
	const char *argv[] = { bin, "-db", "-f", c->haproxy_cfg, NULL };
	c->haproxy_pid = proc_spawn(argv, NULL, c->haproxy_log);
	struct testsrv front = { .port = c->port };
	if (c->haproxy_pid > 0 && testsrv_wait_status(&front, "/readyz", 200, 20000))
		return 0;
	fprintf(stderr, "nodes: no answer through HAProxy on port %d; see %s\n", c->port, c->haproxy_log);
	return -1;
}

int nodes_start(struct nodes *c, int n, const char *conninfo, const char *server_extra)
{
	int ports[NODES_MAX + 2];
	memset(c, 0, sizeof *c);
	c->n = n;
	c->conninfo = conninfo;
	snprintf(c->dir, sizeof c->dir, "/tmp/dropship-nodes.XXXXXX");
	if (n < 1 || n > NODES_MAX || !mkdtemp(c->dir) || free_ports(ports, n + 2) < 0)
		return -1;
	c->port = ports[n];
	c->stats_port = ports[n + 1];
	snprintf(c->haproxy_cfg, sizeof c->haproxy_cfg, "%s/haproxy.cfg", c->dir);
	snprintf(c->haproxy_log, sizeof c->haproxy_log, "%s/haproxy.log", c->dir);
	for (int i = 0; i < n; i++) {
		c->node[i].port = ports[i];
		snprintf(c->node[i].dir, sizeof c->node[i].dir, "%s", c->dir);
		snprintf(c->conf[i], sizeof c->conf[i], "%s/node%d.conf", c->dir, i + 1);
		if (write_node_conf(c, i, server_extra) < 0)
			return -1;
	}
	if (write_haproxy_conf(c) < 0)
		return -1;
	for (int i = 0; i < n; i++)
		if (nodes_start_node(c, i) < 0)
			return -1;
	return start_haproxy(c);
}

void nodes_stop(struct nodes *c)
{
	if (c->haproxy_pid > 0)
		proc_stop(c->haproxy_pid, SIGTERM, 10000);
	c->haproxy_pid = 0;
	for (int i = 0; i < c->n; i++)
		nodes_stop_node(c, i, SIGTERM);
}

/* The index of name among the comma-separated fields of header, or -1. */
static int csv_column(const char *header, const char *name)
{
	size_t len = strlen(name);
	int col = 0;
	for (const char *p = header; *p; col++) {
		size_t flen = strcspn(p, ",\n");
		if (flen == len && strncmp(p, name, len) == 0)
			return col;
		p += flen;
		if (*p != ',')
			break;
		p++;
	}
	return -1;
}

/* Copies field col of the CSV row into out. */
static void csv_field(const char *row, int col, char *out, size_t cap)
{
	const char *p = row;
	for (int i = 0; i < col && p; i++) {
		p = strpbrk(p, ",\n");
		p = p && *p == ',' ? p + 1 : NULL;
	}
	snprintf(out, cap, "%.*s", p ? (int)strcspn(p, ",\n") : 0, p ? p : "");
}

int nodes_haproxy_state(const struct nodes *c, int i, char *status, size_t scap, char *check, size_t ccap)
{
	char url[64], name[16], px[64], sv[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/;csv", c->stats_port);
	snprintf(name, sizeof name, "node%d", i + 1);
	const char *argv[] = { "curl", "-sf", "-m", "5", url, NULL };
	char *out = NULL;
	int rc = -1;
	/* The first line names the columns: "# pxname,svname,...". */
	if (proc_run(argv, NULL, &out, NULL) != 0 || strncmp(out, "# ", 2) != 0)
		goto cleanup;
	int c_px = csv_column(out + 2, "pxname"), c_sv = csv_column(out + 2, "svname");
	int c_status = csv_column(out + 2, "status"), c_check = csv_column(out + 2, "check_status");
	if (c_px < 0 || c_sv < 0 || c_status < 0 || c_check < 0)
		goto cleanup;
	for (const char *row = strchr(out, '\n'); row && row[1]; row = strchr(row, '\n')) {
		row++;
		csv_field(row, c_px, px, sizeof px);
		csv_field(row, c_sv, sv, sizeof sv);
		if (strcmp(px, "dropshipd") == 0 && strcmp(sv, name) == 0) {
			csv_field(row, c_status, status, scap);
			csv_field(row, c_check, check, ccap);
			rc = 0;
			break;
		}
	}
cleanup:
	free(out);
	return rc;
}

long nodes_log_count(const char *path, const char *const *needles)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char *line = NULL;
	size_t cap = 0;
	long n = 0;
	while (getline(&line, &cap, f) > 0) {
		int all = 1;
		for (size_t k = 0; all && needles[k]; k++)
			all = strstr(line, needles[k]) != NULL;
		n += all;
	}
	free(line);
	fclose(f);
	return n;
}
