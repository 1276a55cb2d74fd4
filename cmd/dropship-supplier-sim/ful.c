/* Fulfillments: every request id seen, kept for the life of the process
 * for dedupe (docs/simulator.md, Memory), in arrival order with an
 * open-addressing index, and the one setter that moves their state. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"

#include "sim.h"

static const char *const ful_state_names[] = {
#define X(name, text) text,
	SIM_FUL_STATES(X)
#undef X
};

uint64_t sim_id_hash(const char *id)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *id; id++) {
		h ^= (unsigned char)*id;
		h *= 0x100000001b3ULL;
	}
	return h;
}

struct sim_ful *sim_ful_find(struct sim *sim, const char *id)
{
	if (!sim->table_cap)
		return NULL;
	size_t mask = sim->table_cap - 1;
	for (size_t i = sim_id_hash(id) & mask;; i = (i + 1) & mask) {
		uint32_t slot = sim->table[i];
		if (!slot)
			return NULL;
		if (strcmp(sim->fuls[slot - 1]->id, id) == 0)
			return sim->fuls[slot - 1];
	}
}

static int table_grow(struct sim *sim)
{
	size_t cap = sim->table_cap ? sim->table_cap * 2 : 1024;
	uint32_t *t = calloc(cap, sizeof *t);
	if (!t)
		return -1;
	for (size_t k = 0; k < sim->nfuls; k++)
		for (size_t i = sim_id_hash(sim->fuls[k]->id) & (cap - 1);; i = (i + 1) & (cap - 1))
			if (!t[i]) {
				t[i] = (uint32_t)(k + 1);
				break;
			}
	free(sim->table);
	sim->table = t;
	sim->table_cap = cap;
	return 0;
}

struct sim_ful *sim_ful_add(struct sim *sim, const char *id, size_t supplier)
{
	if (sim->nfuls >= UINT32_MAX - 1)
		return NULL;
	if ((sim->nfuls + 1) * 10 > sim->table_cap * 7 && table_grow(sim) < 0)
		return NULL;
	if (sim->nfuls == sim->capfuls) {
		size_t cap = sim->capfuls ? sim->capfuls * 2 : 1024;
		struct sim_ful **a = realloc(sim->fuls, cap * sizeof *a);
		if (!a)
			return NULL;
		sim->fuls = a;
		sim->capfuls = cap;
	}
	struct sim_ful *f = calloc(1, sizeof *f);
	if (!f || !(f->id = strdup(id))) {
		free(f);
		return NULL;
	}
	f->sim = sim;
	f->supplier = supplier;
	f->state = SIM_FUL_RECEIVED;
	size_t mask = sim->table_cap - 1;
	size_t i = sim_id_hash(id) & mask;
	while (sim->table[i])
		i = (i + 1) & mask;
	sim->table[i] = (uint32_t)(sim->nfuls + 1);
	sim->fuls[sim->nfuls++] = f;
	return f;
}

static void ful_free(struct sim_ful *f)
{
	if (!f)
		return;
	sim_cb_forget(f);
	free(f->id);
	free(f);
}

void sim_ful_free_all(struct sim *sim)
{
	for (size_t i = 0; i < sim->nfuls; i++)
		ful_free(sim->fuls[i]);
	free(sim->fuls);
	free(sim->table);
}

/* The only place a fulfillment changes state: a supplier never goes back. */
void sim_ful_set_state(struct sim_ful *f, enum sim_ful_state to)
{
	enum sim_ful_state from = f->state;
	int legal = (from == SIM_FUL_RECEIVED &&
	             (to == SIM_FUL_ACCEPTED || to == SIM_FUL_REJECTED || to == SIM_FUL_CANCELLED)) ||
	            (from == SIM_FUL_ACCEPTED && (to == SIM_FUL_SHIPPED || to == SIM_FUL_CANCELLED)) ||
	            (from == SIM_FUL_SHIPPED && to == SIM_FUL_DELIVERED);
	assert(legal && to < SIM_FUL_STATE_MAX);
	(void)legal;
	char qid[SIM_ID_MAX + 8];
	log_debug("state", "request_id=%s from=%s to=%s", log_quote(qid, sizeof qid, f->id),
	          ful_state_names[from], ful_state_names[to]);
	f->state = to;
}
