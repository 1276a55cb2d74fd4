#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "netcheck/netcheck.h"

#define NETCHECK_SCHEME "https://"
#define NETCHECK_SCHEME_LEN 8
#define NETCHECK_DEFAULT_PORT "443"

/* A network prefix; for IPv6, v4_at >= 0 says the verdict is that of the
 * IPv4 address at that byte offset rather than "private". */
struct netcheck_prefix {
	unsigned char addr[16];
	int bits;
	int v4_at;
};

static const struct netcheck_prefix netcheck_v4[] = {
	{ { 0 }, 8, -1 },                  /* 0/8: "this network", unspecified */
	{ { 10 }, 8, -1 },                 /* RFC 1918 */
	{ { 100, 64 }, 10, -1 },           /* CGNAT, RFC 6598 */
	{ { 127 }, 8, -1 },                /* loopback */
	{ { 169, 254 }, 16, -1 },          /* link-local, incl. cloud metadata */
	{ { 172, 16 }, 12, -1 },           /* RFC 1918 */
	{ { 192, 0, 0 }, 24, -1 },         /* IETF protocol assignments */
	{ { 192, 168 }, 16, -1 },          /* RFC 1918 */
	{ { 198, 18 }, 15, -1 },           /* benchmarking, often used inside */
	{ { 224 }, 4, -1 },                /* multicast */
	{ { 240 }, 4, -1 },                /* reserved, incl. broadcast */
};

static const struct netcheck_prefix netcheck_v6[] = {
	{ { 0 }, 96, -1 },                                       /* ::, ::1, v4-compatible */
	{ { [10] = 0xff, [11] = 0xff }, 96, 12 },               /* ::ffff:a.b.c.d */
	{ { 0x00, 0x64, 0xff, 0x9b }, 96, 12 },                  /* NAT64 well-known */
	{ { 0x00, 0x64, 0xff, 0x9b, 0x00, 0x01 }, 48, -1 },      /* NAT64 local use */
	{ { 0x20, 0x02 }, 16, 2 },                               /* 6to4 */
	{ { 0xfc }, 7, -1 },                                     /* unique local */
	{ { 0xfe, 0x80 }, 10, -1 },                              /* link-local */
	{ { 0xfe, 0xc0 }, 10, -1 },                              /* old site-local */
	{ { 0xff }, 8, -1 },                                     /* multicast */
};

/* Writes msg into err (if there is room for anything) and returns -1. */
static int netcheck_fail(char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
	return -1;
}

/* Copies len bytes and a NUL; -1 if they do not fit in cap. */
static int netcheck_copy(char *dst, size_t cap, const char *src, size_t len)
{
	if (len >= cap)
		return -1;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

static int netcheck_host_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '.' || ch == '_';
}

/* Parses 1..5 decimal digits in 1..65535 into *out. */
static int netcheck_port(const char *p, size_t len, long *out)
{
	if (len == 0 || len > 5)
		return -1;
	long v = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*out = v;
	return 0;
}

/* The body of netcheck_url; outputs may be partly written on failure. */
static int netcheck_split(const char *url, char *host, size_t hostcap, char *port,
                          size_t portcap, char *path, size_t pathcap, char *err, size_t errlen)
{
	if (!url)
		return netcheck_fail(err, errlen, "no URL");
	/* Bytes that could split or smuggle a request line never get further. */
	for (const char *q = url; *q; q++)
		if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f)
			return netcheck_fail(err, errlen,
			                     "URL has a space, control character or non-ASCII byte");
	if (strchr(url, '#'))
		return netcheck_fail(err, errlen, "URL must not have a fragment (#...)");
	if (strncasecmp(url, NETCHECK_SCHEME, NETCHECK_SCHEME_LEN) != 0)
		return netcheck_fail(err, errlen, "URL must start with https://");

	const char *auth = url + NETCHECK_SCHEME_LEN;
	size_t alen = strcspn(auth, "/?");
	const char *auth_end = auth + alen;
	if (memchr(auth, '@', alen))
		return netcheck_fail(err, errlen, "URL must not carry userinfo (user@)");

	const char *h = auth, *portp = NULL;
	size_t hlen;
	if (alen && auth[0] == '[') {
		const char *close = memchr(auth, ']', alen);
		char lit[INET6_ADDRSTRLEN];
		struct in6_addr a6;
		h = auth + 1;
		hlen = close ? (size_t)(close - h) : 0;
		if (!close || hlen == 0 || hlen >= sizeof lit)
			return netcheck_fail(err, errlen, "bad IPv6 literal in brackets");
		memcpy(lit, h, hlen);
		lit[hlen] = '\0';
		/* inet_pton also refuses zone ids (%eth0), which name local links. */
		if (inet_pton(AF_INET6, lit, &a6) != 1)
			return netcheck_fail(err, errlen, "bad IPv6 literal in brackets");
		if (close + 1 < auth_end) {
			if (close[1] != ':')
				return netcheck_fail(err, errlen, "unexpected text after ']' in host");
			portp = close + 2;
		}
	} else {
		const char *colon = memchr(auth, ':', alen);
		hlen = colon ? (size_t)(colon - auth) : alen;
		if (colon) {
			portp = colon + 1;
			if (memchr(portp, ':', (size_t)(auth_end - portp)))
				return netcheck_fail(err, errlen,
				                     "an IPv6 host must be in brackets: https://[::1]/");
		}
		if (hlen == 0)
			return netcheck_fail(err, errlen, "URL has no host");
		for (size_t i = 0; i < hlen; i++)
			if (!netcheck_host_char(h[i]))
				return netcheck_fail(err, errlen,
				                     "host may have only letters, digits, '-', '.' and '_'");
		if (hlen >= NETCHECK_HOST_MAX)
			return netcheck_fail(err, errlen, "host is too long");
	}
	if (netcheck_copy(host, hostcap, h, hlen) < 0)
		return netcheck_fail(err, errlen, "host does not fit the buffer");

	char portbuf[NETCHECK_PORT_MAX] = NETCHECK_DEFAULT_PORT;
	if (portp) {
		long v;
		if (netcheck_port(portp, (size_t)(auth_end - portp), &v) < 0)
			return netcheck_fail(err, errlen, "port must be a number from 1 to 65535");
		/* Written back without leading zeros, as the Host header wants it. */
		snprintf(portbuf, sizeof portbuf, "%ld", v);
	}
	if (netcheck_copy(port, portcap, portbuf, strlen(portbuf)) < 0)
		return netcheck_fail(err, errlen, "port does not fit the buffer");

	const char *lead = *auth_end == '/' ? "" : "/";
	size_t rlen = strlen(auth_end);
	if (pathcap <= strlen(lead) + rlen)
		return netcheck_fail(err, errlen, "path is too long");
	snprintf(path, pathcap, "%s%s", lead, auth_end);
	return 0;
}

int netcheck_url(const char *url, char *host, size_t hostcap, char *port, size_t portcap,
                 char *path, size_t pathcap, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	if (netcheck_split(url, host, hostcap, port, portcap, path, pathcap, err, errlen) == 0)
		return 0;
	/* Half-split output must not be mistaken for a checked endpoint. */
	if (host && hostcap)
		host[0] = '\0';
	if (port && portcap)
		port[0] = '\0';
	if (path && pathcap)
		path[0] = '\0';
	return -1;
}

static int netcheck_match(const unsigned char *a, const struct netcheck_prefix *p)
{
	int whole = p->bits / 8, rest = p->bits % 8;
	if (memcmp(a, p->addr, (size_t)whole) != 0)
		return 0;
	if (rest == 0)
		return 1;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[whole] & mask) == (p->addr[whole] & mask);
}

/* a: 4 bytes in network order. */
static int netcheck_v4_private(const unsigned char *a)
{
	for (size_t i = 0; i < sizeof netcheck_v4 / sizeof netcheck_v4[0]; i++)
		if (netcheck_match(a, &netcheck_v4[i]))
			return 1;
	return 0;
}

int netcheck_addr_private(const struct sockaddr *sa)
{
	if (!sa)
		return 1;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
		return netcheck_v4_private((const unsigned char *)&sin->sin_addr);
	}
	if (sa->sa_family != AF_INET6)
		return 1;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;
	const unsigned char *a = sin6->sin6_addr.s6_addr;
	for (size_t i = 0; i < sizeof netcheck_v6 / sizeof netcheck_v6[0]; i++) {
		const struct netcheck_prefix *p = &netcheck_v6[i];
		if (netcheck_match(a, p))
			return p->v4_at < 0 ? 1 : netcheck_v4_private(a + p->v4_at);
	}
	return 0;
}

int netcheck_literal(const char *host, int port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (!host || port < 1 || port > 65535)
		return 0;
	struct sockaddr_in *sin = (struct sockaddr_in *)(void *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)ss;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		return (int)sizeof *sin;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		return (int)sizeof *sin6;
	}
	memset(ss, 0, sizeof *ss);
	return 0;
}

int netcheck_authority(const char *host, const char *port, char *buf, size_t cap)
{
	if (!cap)
		return -1;
	int v6 = strchr(host, ':') != NULL;
	int n = snprintf(buf, cap, "%s%s%s%s%s", v6 ? "[" : "", host, v6 ? "]" : "",
	                 strcmp(port, NETCHECK_DEFAULT_PORT) == 0 ? "" : ":",
	                 strcmp(port, NETCHECK_DEFAULT_PORT) == 0 ? "" : port);
	if (n < 0 || (size_t)n >= cap) {
		buf[0] = '\0';
		return -1;
	}
	return 0;
}
