/* Micro-benchmark of route_plan_order: `make bench-route` builds it at -O2
 * (build/bench/bench_route) and runs it; by hand: bench_route [iterations].
 * Prints ns per order for each scenario. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "route/route.h"

#define BENCH_LINES 5
#define BENCH_PER_SKU 10
#define BENCH_MAX_SUPS 20

struct bench_case {
	const char *name;
	int nsup;                 /* suppliers the offers are spread over */
	int tol;
	enum route_policy policy;
	int spread;               /* each line's cheapest offer at another supplier */
};

static uint64_t bench_rng = 12345;

static unsigned bench_rnd(unsigned n)
{
	bench_rng = bench_rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)((bench_rng >> 33) % n);
}

static double bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void bench_run(const struct bench_case *bc, long iters)
{
	static const char *const skus[BENCH_LINES] = { "MUG-01", "TEE-M-BLK", "CAP-RED", "POSTER-A2",
	                                               "SOCKS-42" };
	static const char *const ships[] = { NULL, "*", "US;CA", "GB;US;DE", "US" };
	char codes[BENCH_MAX_SUPS][24];
	struct route_line lines[BENCH_LINES];
	struct route_offer offers[BENCH_LINES * BENCH_PER_SKU];
	struct route_choice ch[BENCH_LINES];
	size_t no = 0;
	for (int s = 0; s < bc->nsup; s++)
		snprintf(codes[s], sizeof codes[s], "supplier-%02d", s);
	for (int i = 0; i < BENCH_LINES; i++) {
		lines[i] = (struct route_line){ skus[i], 1 + (int)bench_rnd(3) };
		/* Ten offers per sku, each from a different supplier. */
		int first = bc->spread ? 2 * i : (int)bench_rnd((unsigned)bc->nsup);
		for (int k = 0; k < BENCH_PER_SKU; k++, no++)
			offers[no] = (struct route_offer){
				.offer_id = (long long)no + 1, .sku = skus[i],
				.supplier_code = codes[(first + k) % bc->nsup],
				.supplier_priority = (int)bench_rnd(5), .supplier_active = 1, .available = 1,
				.unit_cost = bc->spread && k == 0 ? 40000 : 50000 + bench_rnd(20) * 1000,
				.shipping_cost = 5000 + bench_rnd(5) * 1000,
				.stock = 3 + (int)bench_rnd(50), .lead_time_days = 1 + (int)bench_rnd(10),
				.ships_to = bc->spread ? NULL : ships[bench_rnd(5)],
				.accept_ppm = 700000 + (int)bench_rnd(31) * 10000,
				.on_time_ppm = 800000 + (int)bench_rnd(21) * 10000,
			};
	}
	for (size_t i = no; i > 1; i--) {
		size_t j = bench_rnd((unsigned)i);
		struct route_offer t = offers[i - 1];
		offers[i - 1] = offers[j];
		offers[j] = t;
	}
	/* balanced: a late or rejected unit costs 2.00 */
	struct route_request req = { lines, BENCH_LINES, offers, no, "US", bc->policy, bc->tol,
	                             bc->policy == ROUTE_BALANCED ? 20000 : 0, 0, 0 };
	struct route_plan plan = { .choices = ch };
	if (route_plan_order(&req, &plan) < 0) {
		fprintf(stderr, "%s: route_plan_order failed\n", bc->name);
		exit(1);
	}
	int routed = 0;
	for (int i = 0; i < BENCH_LINES; i++)
		routed += ch[i].offer >= 0;
	volatile long long sink = 0;
	double t0 = bench_now_ns();
	for (long n = 0; n < iters; n++) {
		route_plan_order(&req, &plan);
		sink += plan.total_cost;
	}
	double ns = (bench_now_ns() - t0) / (double)iters;
	(void)sink;
	printf("%-44s %8.0f ns/order  (routed %d/%d, suppliers %d, consolidated %d, exact %d)\n",
	       bc->name, ns, routed, BENCH_LINES, plan.nsuppliers, plan.consolidated,
	       plan.search_exact);
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
	if (iters <= 0)
		iters = 1000000;
	static const struct bench_case cases[] = {
		{ "5 lines x 10 offers, 10 suppliers, cheapest", 10, 10, ROUTE_CHEAPEST, 0 },
		{ "5 lines x 10 offers, 10 suppliers, fastest", 10, 10, ROUTE_FASTEST, 0 },
		{ "5 lines x 10 offers, 10 suppliers, balanced", 10, 10, ROUTE_BALANCED, 0 },
		{ "5 lines x 10 offers, 12 suppliers, tol 0", 12, 0, ROUTE_CHEAPEST, 0 },
		{ "same, B on 5 suppliers: all k<=3, then greedy", 12, 0, ROUTE_CHEAPEST, 1 },
		{ "5 lines x 10 offers, 20 suppliers (greedy)", 20, 10, ROUTE_CHEAPEST, 0 },
		{ "5 lines x 10 offers, 20 suppliers, priority", 20, 10, ROUTE_PRIORITY, 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		bench_run(&cases[i], iters);
	return 0;
}
