#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <libpq-fe.h>

#include "check.h"
#include "tls/tls.h"

/* One run of load_config or check_config: the errors so far and the keys
 * they were about (the further checks skip a key already in error: its
 * value is only the default). */
struct check {
	int errors;
	int nbad;
	const char *bad[64][2];        /* section, key: static strings of config */
};

__attribute__((format(printf, 2, 3)))
static void check_error(struct check *ck, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("dropshipd: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	ck->errors++;
}

static void check_config_error(const struct config_error *e, void *arg)
{
	struct check *ck = arg;
	check_error(ck, "%s", e->msg);
	if (e->section && ck->nbad < (int)(sizeof ck->bad / sizeof ck->bad[0])) {
		ck->bad[ck->nbad][0] = e->section;
		ck->bad[ck->nbad][1] = e->key;
		ck->nbad++;
	}
}

static bool check_key_bad(const struct check *ck, const char *section, const char *key)
{
	for (int i = 0; i < ck->nbad; i++)
		if (strcmp(ck->bad[i][0], section) == 0 && strcmp(ck->bad[i][1], key) == 0)
			return true;
	return false;
}

/* The last line of a list of errors. */
static void check_summary(const struct check *ck, const char *path)
{
	fprintf(stderr, "dropshipd: %s: %d error%s\n", path, ck->errors, ck->errors == 1 ? "" : "s");
}

int load_config(const char *path, struct config *cfg)
{
	struct check ck = { 0 };
	int n = config_load_all(cfg, path, check_config_error, &ck);
	if (n > 0)
		check_summary(&ck, path);
	return n == 0 ? 0 : -1;
}

/* Whether the file of a key can be opened; an error naming the key if not.
 * The TLS functions would say less (OpenSSL's "system lib"). */
static bool check_readable(struct check *ck, const char *what, const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		check_error(ck, "%s: cannot read %s: %s", what, path, strerror(errno));
		return false;
	}
	fclose(f);
	return true;
}

static void check_tls(struct check *ck, const struct config *cfg)
{
	char err[1024];
	bool cert = !check_key_bad(ck, "server", "tls_cert") &&
	            check_readable(ck, "[server] tls_cert", cfg->server.tls_cert);
	bool key = !check_key_bad(ck, "server", "tls_key") &&
	           check_readable(ck, "[server] tls_key", cfg->server.tls_key);
	if (cert && key) {
		SSL_CTX *ctx = tls_server_ctx_new(cfg->server.tls_cert, cfg->server.tls_key, err, sizeof err);
		if (!ctx)
			check_error(ck, "[server] tls_cert, tls_key: %s", err);
		SSL_CTX_free(ctx);
	}
	const char *ca = cfg->dispatch.tls_ca_file;
	if (*ca && !check_key_bad(ck, "dispatch", "tls_ca_file") &&
	    check_readable(ck, "[dispatch] tls_ca_file", ca)) {
		SSL_CTX *ctx = tls_client_ctx_new(ca, err, sizeof err);
		if (!ctx)
			check_error(ck, "[dispatch] tls_ca_file: %s", err);
		SSL_CTX_free(ctx);
	}
}

/* Copies libpq's message without what it quotes of the URL (it may be the
 * password): quoted text longer than one character becomes "...". Quoted
 * single characters stay: they are the separators it expected. */
static void check_redact(const char *msg, char *out, size_t cap)
{
	size_t o = 0;
	for (const char *p = msg; *p;) {
		const char *from = p, *to;
		const char *end = *p == '"' ? strchr(p + 1, '"') : NULL;
		if (*p == '"' && (!end || end - p > 2)) {
			from = "\"...\"";
			to = from + 5;
			p = end ? end + 1 : p + strlen(p);
		} else {
			to = end ? end + 1 : p + 1;
			p = to;
		}
		size_t n = (size_t)(to - from);
		if (o + n >= cap)
			break;
		memcpy(out + o, from, n);
		o += n;
	}
	while (o && (out[o - 1] == '\n' || out[o - 1] == ' '))
		o--;
	out[o] = '\0';
}

static void check_database_url(struct check *ck, const struct config *cfg)
{
	if (check_key_bad(ck, "database", "url"))
		return;
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(cfg->database.url, &msg);
	if (!opts) {
		char safe[512];
		check_redact(msg ? msg : "out of memory", safe, sizeof safe);
		check_error(ck, "[database] url: %s", safe);
	}
	PQfreemem(msg);
	PQconninfoFree(opts);
}

/* The host of a listen value must be numeric or resolve; nothing is bound. */
static void check_listen(struct check *ck, const char *section, const char *listen)
{
	char host[256], port[8];
	if (check_key_bad(ck, section, "listen") ||
	    config_listen_split(listen, host, sizeof host, port, sizeof port) < 0 || !*host)
		return; /* in error already, empty ([admin]: no listener), or every interface */
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	int rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0)
		check_error(ck, "[%s] listen: cannot resolve host '%s': %s", section, host, gai_strerror(rc));
	else
		freeaddrinfo(ai);
}

int check_config(const char *path)
{
	static struct config cfg;
	struct check ck = { 0 };
	if (config_load_all(&cfg, path, check_config_error, &ck) < 0)
		return 1; /* the file cannot be read: nothing else is worth checking */
	check_tls(&ck, &cfg);
	check_database_url(&ck, &cfg);
	check_listen(&ck, "server", cfg.server.listen);
	check_listen(&ck, "admin", cfg.admin.listen);
	if (ck.errors) {
		check_summary(&ck, path);
		return 1;
	}
	printf("%s: configuration ok\n", path);
	return 0;
}
