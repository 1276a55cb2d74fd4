/* netcheck: outbound safety checks for supplier and store endpoints (SSRF;
 * docs/dispatch.md, Outbound HTTPS).
 * Pure: no I/O and no name resolution. The dispatcher checks the URL with
 * netcheck_url, resolves host itself, refuses (unless allow_private_endpoints)
 * any address for which netcheck_addr_private says 1, and connects to the
 * very addresses it checked, never resolving the name a second time: a
 * second lookup could answer differently (DNS rebinding). */
#ifndef DROPSHIP_NETCHECK_H
#define DROPSHIP_NETCHECK_H
#include <stddef.h>
#include <sys/socket.h>

/* Room for any host netcheck_url accepts (a DNS name is at most 253
 * characters plus an optional trailing dot), and for a port. */
#define NETCHECK_HOST_MAX 256
#define NETCHECK_PORT_MAX 6

/* Checks an endpoint URL and splits it. It must be https:// (scheme case
 * ignored), with a non-empty host: a DNS name of letters, digits, '-', '.',
 * '_', or a bracketed IPv6 literal (host is written without the brackets);
 * an optional port 1..65535 (port defaults to "443"); no userinfo (user@),
 * no fragment, and no space, control or non-ASCII byte anywhere. path gets
 * the path and query as sent in the request line ("/" when absent). Returns
 * 0, or -1 with a message in err (host, port, path are then empty). */
int netcheck_url(const char *url, char *host, size_t hostcap, char *port, size_t portcap,
                 char *path, size_t pathcap, char *err, size_t errlen);

/* 1 if dropshipd must not connect to this address without
 * allow_private_endpoints, else 0. IPv4: 0/8 (unspecified), 10/8, 100.64/10
 * (CGNAT), 127/8, 169.254/16, 172.16/12, 192.0.0/24 (IETF protocol use),
 * 192.168/16, 198.18/15 (benchmarking), 224/4 (multicast), 240/4 (reserved,
 * with 255.255.255.255). IPv6: ::/96 (::, ::1, old v4-compatible), fc00::/7,
 * fe80::/10, fec0::/10 (old site-local), ff00::/8, 64:ff9b:1::/48 (local
 * NAT64); ::ffff:0:0/96 (v4-mapped), 64:ff9b::/96 (NAT64) and 2002::/16
 * (6to4) are judged by the IPv4 address inside. Any other family, or NULL,
 * is 1: what cannot be judged is refused. */
int netcheck_addr_private(const struct sockaddr *sa);

/* If host is an IP address as netcheck_url leaves it (dotted-quad IPv4, or
 * IPv6 without the brackets), fills *ss with it and port (1..65535) and
 * returns the address's length; such a host is connected to as it is,
 * never looked up. 0 for a name to resolve (or a bad port). */
int netcheck_literal(const char *host, int port, struct sockaddr_storage *ss);

/* Writes host and port the way a URL authority and a Host header carry
 * them: an IPv6 address in brackets, ":port" unless port is "443".
 * Returns 0, or -1 (buf then "") when it does not fit in cap. */
int netcheck_authority(const char *host, const char *port, char *buf, size_t cap);

#endif
