#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "netcheck/netcheck.h"
#include "support/harness.h"

/* One assertion per table row, reported under the row's own text. */
static void check_case(int ok, const char *what, unsigned line)
{
	CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, line, what, __FILE__, "", CU_FALSE);
}

/* Builds a sockaddr of the literal's family; fails the test if it is not one. */
static int addr_private(const char *lit)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, lit, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(443);
	} else if (inet_pton(AF_INET6, lit, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(443);
	} else {
		CU_FAIL_FATAL("test address literal does not parse");
	}
	return netcheck_addr_private((const struct sockaddr *)&ss);
}

struct addr_case {
	const char *lit;
	int private;
};

static void check_addrs(const struct addr_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		check_case(addr_private(cases[i].lit) == cases[i].private, cases[i].lit, __LINE__);
	}
}

static void test_ipv4_addresses(void)
{
	static const struct addr_case cases[] = {
		{ "0.0.0.0", 1 },         { "0.255.255.255", 1 },
		{ "10.0.0.1", 1 },        { "10.255.255.255", 1 },
		{ "100.64.0.0", 1 },      { "100.127.255.255", 1 },
		{ "100.63.255.255", 0 },  { "100.128.0.0", 0 },
		{ "127.0.0.1", 1 },       { "127.1.2.3", 1 },
		{ "169.254.169.254", 1 }, { "169.254.0.1", 1 },
		{ "169.253.255.255", 0 }, { "169.255.0.0", 0 },
		{ "172.16.0.0", 1 },      { "172.31.255.255", 1 },
		{ "172.15.255.255", 0 },  { "172.32.0.0", 0 },
		{ "192.0.0.1", 1 },       { "192.0.1.1", 0 },
		{ "192.168.0.1", 1 },     { "192.168.255.255", 1 },
		{ "192.167.255.255", 0 }, { "192.169.0.0", 0 },
		{ "198.18.0.1", 1 },      { "198.19.255.255", 1 },
		{ "198.17.255.255", 0 },  { "198.20.0.0", 0 },
		{ "224.0.0.1", 1 },       { "239.255.255.250", 1 },
		{ "240.0.0.1", 1 },       { "255.255.255.255", 1 },
		{ "223.255.255.255", 0 },
		{ "1.1.1.1", 0 },         { "8.8.8.8", 0 },
		{ "93.184.216.34", 0 },   { "11.0.0.1", 0 },
		{ "126.255.255.255", 0 }, { "128.0.0.1", 0 },
		{ "192.0.2.1", 0 },       { "203.0.113.9", 0 },
	};
	check_addrs(cases, sizeof cases / sizeof cases[0]);
}

static void test_ipv6_addresses(void)
{
	static const struct addr_case cases[] = {
		{ "::", 1 },
		{ "::1", 1 },
		{ "::2", 1 },
		{ "::8.8.8.8", 1 },                /* deprecated v4-compatible */
		{ "fc00::1", 1 },
		{ "fd12:3456:789a::1", 1 },
		{ "fbff:ffff::1", 0 },
		{ "fe00::1", 0 },
		{ "fe80::1", 1 },
		{ "febf:ffff::1", 1 },
		{ "fec0::1", 1 },
		{ "feff::1", 1 },
		{ "ff02::1", 1 },
		{ "ff0e::1", 1 },
		/* v4-mapped: the address inside decides. */
		{ "::ffff:127.0.0.1", 1 },
		{ "::ffff:10.1.2.3", 1 },
		{ "::ffff:169.254.169.254", 1 },
		{ "::ffff:7f00:1", 1 },
		{ "::ffff:8.8.8.8", 0 },
		{ "::fffe:127.0.0.1", 0 },
		/* NAT64 well-known prefix: likewise. */
		{ "64:ff9b::127.0.0.1", 1 },
		{ "64:ff9b::192.168.1.1", 1 },
		{ "64:ff9b::8.8.8.8", 0 },
		{ "64:ff9b:1::8.8.8.8", 1 },
		/* 6to4 carries its IPv4 in bytes 2..5. */
		{ "2002:7f00:1::", 1 },
		{ "2002:a00:1::1", 1 },
		{ "2002:808:808::1", 0 },
		/* Public unicast. */
		{ "2001:4860:4860::8888", 0 },
		{ "2606:4700:4700::1111", 0 },
		{ "2a00:1450:4001:81b::200e", 0 },
		{ "2001:db8::1", 0 },
	};
	check_addrs(cases, sizeof cases / sizeof cases[0]);
}

static void test_other_families(void)
{
	struct sockaddr_un un;
	memset(&un, 0, sizeof un);
	un.sun_family = AF_UNIX;
	CU_ASSERT_EQUAL(netcheck_addr_private((const struct sockaddr *)&un), 1);
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	ss.ss_family = AF_UNSPEC;
	CU_ASSERT_EQUAL(netcheck_addr_private((const struct sockaddr *)&ss), 1);
	CU_ASSERT_EQUAL(netcheck_addr_private(NULL), 1);
}

struct url_case {
	const char *url;
	const char *host, *port, *path; /* NULL host: refused */
	const char *err_has;            /* a word the message must contain */
};

static void test_urls(void)
{
	static const struct url_case cases[] = {
		{ "https://supplier.example/", "supplier.example", "443", "/", NULL },
		{ "https://supplier.example", "supplier.example", "443", "/", NULL },
		{ "https://api.acme.test:8443/v1/orders", "api.acme.test", "8443", "/v1/orders", NULL },
		{ "https://api.acme.test/v1/orders?key=a&b=c", "api.acme.test", "443",
		  "/v1/orders?key=a&b=c", NULL },
		{ "https://api.acme.test?x=1", "api.acme.test", "443", "/?x=1", NULL },
		{ "https://api.acme.test:1/", "api.acme.test", "1", "/", NULL },
		{ "https://api.acme.test:65535", "api.acme.test", "65535", "/", NULL },
		{ "https://api.acme.test:00443/", "api.acme.test", "443", "/", NULL },
		{ "HTTPS://Api.Acme.Test/", "Api.Acme.Test", "443", "/", NULL },
		{ "https://my_host.internal-x.test./p", "my_host.internal-x.test.", "443", "/p", NULL },
		{ "https://127.0.0.1:9443/hook", "127.0.0.1", "9443", "/hook", NULL },
		{ "https://[::1]/", "::1", "443", "/", NULL },
		{ "https://[2001:db8::1]:8443/x", "2001:db8::1", "8443", "/x", NULL },
		{ "https://[::ffff:10.0.0.1]", "::ffff:10.0.0.1", "443", "/", NULL },
		{ "https://[::1]:9443/path", "::1", "9443", "/path", NULL },
		{ "https://[2001:db8::1]/x", "2001:db8::1", "443", "/x", NULL },
		{ "https://[2001:DB8::A]?q=1", "2001:DB8::A", "443", "/?q=1", NULL },
		{ "https://[fe80::1]:443", "fe80::1", "443", "/", NULL },
		{ "https://[2001:db8:0:0:0:0:0:1]:65535/", "2001:db8:0:0:0:0:0:1", "65535", "/", NULL },
		{ "https://[::ffff:127.0.0.1]:8443/", "::ffff:127.0.0.1", "8443", "/", NULL },
		{ "https://h/a/b%20c/:@!$&'()*+,;=", "h", "443", "/a/b%20c/:@!$&'()*+,;=", NULL },

		{ "http://supplier.example/", NULL, NULL, NULL, "https://" },
		{ "ftp://supplier.example/", NULL, NULL, NULL, "https://" },
		{ "supplier.example/", NULL, NULL, NULL, "https://" },
		{ "https:/supplier.example/", NULL, NULL, NULL, "https://" },
		{ "//supplier.example/", NULL, NULL, NULL, "https://" },
		{ "", NULL, NULL, NULL, "https://" },
		{ NULL, NULL, NULL, NULL, "URL" },
		{ "https://", NULL, NULL, NULL, "no host" },
		{ "https:///path", NULL, NULL, NULL, "no host" },
		{ "https://:443/", NULL, NULL, NULL, "no host" },
		{ "https://user@supplier.example/", NULL, NULL, NULL, "userinfo" },
		{ "https://user:pw@supplier.example/", NULL, NULL, NULL, "userinfo" },
		{ "https://@supplier.example/", NULL, NULL, NULL, "userinfo" },
		{ "https://supplier.example@127.0.0.1/", NULL, NULL, NULL, "userinfo" },
		{ "https://supplier.example/#frag", NULL, NULL, NULL, "fragment" },
		{ "https://supplier.example#", NULL, NULL, NULL, "fragment" },
		{ "https://supplier.example:0/", NULL, NULL, NULL, "port" },
		{ "https://supplier.example:65536/", NULL, NULL, NULL, "port" },
		{ "https://supplier.example:123456/", NULL, NULL, NULL, "port" },
		{ "https://supplier.example:/", NULL, NULL, NULL, "port" },
		{ "https://supplier.example:-1/", NULL, NULL, NULL, "port" },
		{ "https://supplier.example:44a/", NULL, NULL, NULL, "port" },
		{ "https://supplier.example:443:443/", NULL, NULL, NULL, "brackets" },
		{ "https://::1/", NULL, NULL, NULL, "brackets" },
		{ "https://[::1/", NULL, NULL, NULL, "IPv6" },
		{ "https://[]/", NULL, NULL, NULL, "IPv6" },
		{ "https://[not-v6]/", NULL, NULL, NULL, "IPv6" },
		{ "https://[127.0.0.1]/", NULL, NULL, NULL, "IPv6" },
		{ "https://[fe80::1%25eth0]/", NULL, NULL, NULL, "IPv6" },
		{ "https://[::1]x/", NULL, NULL, NULL, "after ']'" },
		{ "https://[::1]:0/", NULL, NULL, NULL, "port" },
		{ "https://[::1]:/", NULL, NULL, NULL, "port" },
		{ "https://[::1]:65536/", NULL, NULL, NULL, "port" },
		{ "https://[[::1]]/", NULL, NULL, NULL, "IPv6" },
		{ "https://[::1]]/", NULL, NULL, NULL, "after ']'" },
		{ "https://[1:2:3:4:5:6:7:8:9]/", NULL, NULL, NULL, "IPv6" },
		{ "https://[::1%lo]/", NULL, NULL, NULL, "IPv6" },
		{ "https://[v1.fe]/", NULL, NULL, NULL, "IPv6" },
		{ "https://[::1]@evil/", NULL, NULL, NULL, "userinfo" },
		{ "https://2001:db8::1/", NULL, NULL, NULL, "brackets" },
		{ "https://2001:db8::1:443/", NULL, NULL, NULL, "brackets" },
		{ "https://sup plier.example/", NULL, NULL, NULL, "space" },
		{ "https://supplier.example/a b", NULL, NULL, NULL, "space" },
		{ "https://supplier.example/\r\nHost: evil", NULL, NULL, NULL, "control" },
		{ "https://supplier.example/\t", NULL, NULL, NULL, "control" },
		{ "https://suppli\xc3\xa9r.example/", NULL, NULL, NULL, "non-ASCII" },
		{ "https://supplier.example\\@evil/", NULL, NULL, NULL, "userinfo" },
		{ "https://evil\\.example/", NULL, NULL, NULL, "letters" },
		{ "https://ex%61mple.test/", NULL, NULL, NULL, "letters" },
		{ "https://a,b.test/", NULL, NULL, NULL, "letters" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct url_case *c = &cases[i];
		char host[NETCHECK_HOST_MAX], port[NETCHECK_PORT_MAX], path[256], err[128];
		memset(host, 'X', sizeof host);
		memset(port, 'X', sizeof port);
		memset(path, 'X', sizeof path);
		memset(err, 'X', sizeof err);
		int rc = netcheck_url(c->url, host, sizeof host, port, sizeof port, path, sizeof path,
		                      err, sizeof err);
		int ok;
		if (c->host) {
			ok = rc == 0 && strcmp(host, c->host) == 0 && strcmp(port, c->port) == 0 &&
			     strcmp(path, c->path) == 0 && err[0] == '\0';
		} else {
			ok = rc == -1 && host[0] == '\0' && port[0] == '\0' && path[0] == '\0' &&
			     strstr(err, c->err_has) != NULL;
		}
		check_case(ok, c->url ? c->url : "(null)", __LINE__);
	}
}

static void test_url_buffers(void)
{
	char host[8], port[NETCHECK_PORT_MAX], path[8], err[64];
	CU_ASSERT_EQUAL(netcheck_url("https://abcdefg/", host, sizeof host, port, sizeof port, path,
	                             sizeof path, err, sizeof err),
	                0);
	CU_ASSERT_STRING_EQUAL(host, "abcdefg");
	CU_ASSERT_EQUAL(netcheck_url("https://abcdefgh/", host, sizeof host, port, sizeof port, path,
	                             sizeof path, err, sizeof err),
	                -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "host"));
	CU_ASSERT_EQUAL(netcheck_url("https://h/1234567", host, sizeof host, port, sizeof port, path,
	                             sizeof path, err, sizeof err),
	                -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "path"));
	CU_ASSERT_EQUAL(netcheck_url("https://h?123456", host, sizeof host, port, sizeof port, path,
	                             sizeof path, err, sizeof err),
	                -1);
	CU_ASSERT_EQUAL(netcheck_url("https://h?12345", host, sizeof host, port, sizeof port, path,
	                             sizeof path, err, sizeof err),
	                0);
	CU_ASSERT_STRING_EQUAL(path, "/?12345");
	CU_ASSERT_EQUAL(netcheck_url("https://h:8443/", host, sizeof host, port, 4, path,
	                             sizeof path, err, sizeof err),
	                -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "port"));

	/* A host longer than any DNS name is refused whatever the buffer. */
	char url[400] = "https://", big[400];
	memset(url + 8, 'a', 300);
	url[308] = '\0';
	CU_ASSERT_EQUAL(netcheck_url(url, big, sizeof big, port, sizeof port, big, sizeof big, err,
	                             sizeof err),
	                -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "too long"));

	/* No room for a message is fine; a short one is cut, still terminated. */
	CU_ASSERT_EQUAL(netcheck_url("http://x/", host, sizeof host, port, sizeof port, path,
	                             sizeof path, NULL, 0),
	                -1);
	char tiny[6];
	CU_ASSERT_EQUAL(netcheck_url("http://x/", host, sizeof host, port, sizeof port, path,
	                             sizeof path, tiny, sizeof tiny),
	                -1);
	CU_ASSERT_EQUAL(strlen(tiny), sizeof tiny - 1);
}

struct literal_case {
	const char *host;
	int family;     /* 0: a name, to resolve */
	int private;    /* for a literal: what the address rule says */
};

/* The hosts netcheck_url leaves are connected to as they are when they are
 * addresses, and the address rule judges that very address. */
static void test_literals(void)
{
	static const struct literal_case cases[] = {
		{ "127.0.0.1", AF_INET, 1 },
		{ "8.8.8.8", AF_INET, 0 },
		{ "::1", AF_INET6, 1 },
		{ "::", AF_INET6, 1 },
		{ "2001:db8::1", AF_INET6, 0 },
		{ "2001:DB8::A", AF_INET6, 0 },
		{ "fc00::1", AF_INET6, 1 },
		{ "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", AF_INET6, 1 },
		{ "fe80::1", AF_INET6, 1 },
		{ "febf::1", AF_INET6, 1 },
		{ "fe7f::1", AF_INET6, 0 },
		{ "::ffff:127.0.0.1", AF_INET6, 1 },
		{ "::ffff:7f00:1", AF_INET6, 1 },
		{ "::ffff:192.168.0.10", AF_INET6, 1 },
		{ "::ffff:169.254.169.254", AF_INET6, 1 },
		{ "::ffff:0.0.0.0", AF_INET6, 1 },
		{ "::ffff:93.184.216.34", AF_INET6, 0 },
		{ "supplier.example", 0, 0 },
		{ "localhost", 0, 0 },
		{ "127.1", 0, 0 },            /* not dotted-quad: a name, whose answer is judged */
		{ "0x7f.0.0.1", 0, 0 },
		{ "1.2.3.4.example", 0, 0 },
		{ "", 0, 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct literal_case *c = &cases[i];
		struct sockaddr_storage ss;
		memset(&ss, 0xa5, sizeof ss);
		int len = netcheck_literal(c->host, 9443, &ss);
		int ok;
		if (!c->family) {
			ok = len == 0 && ss.ss_family == AF_UNSPEC;
		} else if (c->family == AF_INET) {
			const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
			ok = len == (int)sizeof *sin && sin->sin_family == AF_INET && ntohs(sin->sin_port) == 9443 &&
			     netcheck_addr_private((const struct sockaddr *)&ss) == c->private;
		} else {
			const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
			ok = len == (int)sizeof *sin6 && sin6->sin6_family == AF_INET6 &&
			     ntohs(sin6->sin6_port) == 9443 && sin6->sin6_scope_id == 0 &&
			     netcheck_addr_private((const struct sockaddr *)&ss) == c->private;
		}
		check_case(ok, c->host, __LINE__);
	}
	struct sockaddr_storage ss;
	CU_ASSERT_EQUAL(netcheck_literal("::1", 0, &ss), 0);
	CU_ASSERT_EQUAL(netcheck_literal("::1", 65536, &ss), 0);
	CU_ASSERT_EQUAL(netcheck_literal(NULL, 443, &ss), 0);
	CU_ASSERT_EQUAL(netcheck_literal("::1", 65535, &ss), (int)sizeof(struct sockaddr_in6));
}

/* Every URL netcheck_url accepts splits into a host and port that
 * netcheck_authority writes back as the URL had them. */
static void test_authority(void)
{
	static const char *const cases[][3] = {
		{ "supplier.example", "443", "supplier.example" },
		{ "supplier.example", "8443", "supplier.example:8443" },
		{ "127.0.0.1", "9443", "127.0.0.1:9443" },
		{ "::1", "9443", "[::1]:9443" },
		{ "::1", "443", "[::1]" },
		{ "2001:db8::1", "1", "[2001:db8::1]:1" },
		{ "::ffff:10.0.0.1", "443", "[::ffff:10.0.0.1]" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char buf[64];
		memset(buf, 'X', sizeof buf);
		check_case(netcheck_authority(cases[i][0], cases[i][1], buf, sizeof buf) == 0 &&
		           strcmp(buf, cases[i][2]) == 0, cases[i][2], __LINE__);
	}
	char url[400], host[NETCHECK_HOST_MAX], port[NETCHECK_PORT_MAX], path[64], err[128], auth[300];
	static const char *const urls[] = { "https://[::1]:9443/p", "https://[2001:db8::1]/x", "https://h:8443/",
	                                    "https://10.1.2.3/" };
	for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
		int ok = netcheck_url(urls[i], host, sizeof host, port, sizeof port, path, sizeof path, err,
		                      sizeof err) == 0 &&
		         netcheck_authority(host, port, auth, sizeof auth) == 0;
		snprintf(url, sizeof url, "https://%s%s", auth, path);
		check_case(ok && strcmp(url, urls[i]) == 0, urls[i], __LINE__);
	}
	char small[6];
	CU_ASSERT_EQUAL(netcheck_authority("::1", "9443", small, sizeof small), -1);
	CU_ASSERT_STRING_EQUAL(small, "");
	CU_ASSERT_EQUAL(netcheck_authority("[::1]", "1", small, 0), -1);
	CU_ASSERT_EQUAL(netcheck_authority("h", "443", small, sizeof small), 0);
	CU_ASSERT_STRING_EQUAL(small, "h");
}

static const struct harness_test tests[] = {
	{ "IPv4 addresses", test_ipv4_addresses },
	{ "IPv6 addresses", test_ipv6_addresses },
	{ "other families are refused", test_other_families },
	{ "endpoint URLs", test_urls },
	{ "URL output buffers", test_url_buffers },
	{ "IP literals are connected to as they are", test_literals },
	{ "host and port written back", test_authority },
	{ NULL, NULL },
};

int main(void)
{
	return harness_main("netcheck", NULL, NULL, tests);
}
