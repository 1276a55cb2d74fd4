/* GET /stats: the counters of struct sim_stats and, per request id, how
 * many times its fulfillment.requested was delivered (docs/simulator.md). */
#include <stddef.h>

#include <event2/http.h>
#include <jansson.h>

#include "sim.h"

#define SIM_STATS_CAP 100000          /* by_request entries shown by /stats */

static json_t *stats_json(const struct sim *sim)
{
	const struct sim_stats *st = &sim->stats;
	json_t *by = json_object();
	size_t shown = 0, total = 0;
	for (size_t i = 0; by && i < sim->nfuls; i++) {
		const struct sim_ful *f = sim->fuls[i];
		if (!f->deliveries)
			continue;
		total++;
		if (shown < SIM_STATS_CAP) {
			json_object_set_new(by, f->id, json_integer((json_int_t)f->deliveries));
			shown++;
		}
	}
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o*, s:b}",
	                 "requests", (json_int_t)st->requests, "accepted", (json_int_t)st->accepted,
	                 "duplicates", (json_int_t)st->duplicates,
	                 "failed_injected", (json_int_t)st->failed_injected, "hung", (json_int_t)st->hung,
	                 "cancels", (json_int_t)st->cancels, "callbacks_sent", (json_int_t)st->callbacks_sent,
	                 "callbacks_failed", (json_int_t)st->callbacks_failed,
	                 "callbacks_retried", (json_int_t)st->callbacks_retried,
	                 "feeds_sent", (json_int_t)st->feeds_sent, "feeds_failed", (json_int_t)st->feeds_failed,
	                 "by_request", by,
	                 "by_request_truncated", total > shown);
}

void sim_stats_serve(struct sim *sim, struct evhttp_request *req)
{
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		sim_answer_not_allowed(req, "GET");
		return;
	}
	sim_answer_plain(req, 200, stats_json(sim));
}
