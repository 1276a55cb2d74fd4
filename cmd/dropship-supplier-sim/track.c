/* Tracking of a simulated parcel: a carrier of the big four and a number
 * of its own form, check digit and all, so that what reaches a store (and
 * its platform) looks like a real shipment; stable per request id. */
#include <stdio.h>
#include <string.h>

#include "platform/platform.h"
#include "sim.h"

/* n decimal digits of h into out (NUL-terminated). */
static void track_digits(uint64_t h, int n, char *out)
{
	for (int i = n - 1; i >= 0; i--) {
		out[i] = (char)('0' + h % 10);
		h /= 10;
	}
	out[n] = '\0';
}

/* UPS: 1Z, a 6-character shipper number, a 2-digit service, 7 digits of
 * package, and the mod-10 check digit over the 15 after 1Z (letters
 * count as (c - 'A' + 2) % 10, every second character doubled). */
static void track_ups(uint64_t h, char *out, size_t cap)
{
	char body[16], pkg[8];
	track_digits(h >> 8, 7, pkg);
	snprintf(body, sizeof body, "%c%c%c%03u01%s", 'A' + (int)(h % 26), 'A' + (int)(h / 26 % 26),
	         'W', (unsigned)(h % 1000), pkg);
	int sum = 0;
	for (int i = 0; i < 15; i++) {
		int v = body[i] >= 'A' ? (body[i] - 'A' + 2) % 10 : body[i] - '0';
		sum += i % 2 ? 2 * v : v;
	}
	snprintf(out, cap, "1Z%s%d", body, (10 - sum % 10) % 10);
}

/* USPS: 22 digits starting 9400 1 (Priority Mail), mod-10 check with
 * weights 3 and 1 from the right. */
static void track_usps(uint64_t h, char *out, size_t cap)
{
	char d[23];
	memcpy(d, "94001", 5);
	track_digits(h, 16, d + 5);
	int sum = 0;
	for (int i = 20, w = 3; i >= 0; i--, w = 4 - w)
		sum += (d[i] - '0') * w;
	snprintf(out, cap, "%.21s%d", d, (10 - sum % 10) % 10);
}

/* DHL Express: a 10-digit waybill, the last digit the first nine mod 7. */
static void track_dhl(uint64_t h, char *out, size_t cap)
{
	char d[10];
	track_digits(h % 1000000000ULL, 9, d);
	unsigned long long n = 0;
	for (int i = 0; i < 9; i++)
		n = n * 10 + (unsigned)(d[i] - '0');
	snprintf(out, cap, "%s%llu", d, n % 7);
}

void sim_tracking(const char *request_id, struct sim_tracking *t)
{
	uint64_t h = sim_id_hash(request_id);
	switch (h % 4) {
	case 0:
		snprintf(t->carrier, sizeof t->carrier, "UPS");
		track_ups(h / 4, t->number, sizeof t->number);
		break;
	case 1:
		snprintf(t->carrier, sizeof t->carrier, "USPS");
		track_usps(h / 4, t->number, sizeof t->number);
		break;
	case 2:
		snprintf(t->carrier, sizeof t->carrier, "FedEx");
		track_digits(h / 4 % 1000000000000ULL, 12, t->number); /* FedEx Express: 12 digits */
		break;
	default:
		snprintf(t->carrier, sizeof t->carrier, "DHL Express");
		track_dhl(h / 4, t->number, sizeof t->number);
		break;
	}
	if (!platform_tracking_url(t->carrier, t->number, t->url, sizeof t->url))
		t->url[0] = '\0';
}
