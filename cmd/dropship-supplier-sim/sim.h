/* dropship-supplier-sim: what its files share. main.c parses the options
 * and wires the loop; faults.c decides which attempts fail, hang or are
 * rejected. The behaviour is described in docs/simulator.md. */
#ifndef DROPSHIP_SIM_H
#define DROPSHIP_SIM_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define SIM_NAME "dropship-supplier-sim"
#define SIM_CODE_MAX 64

struct sim_supplier {
	char code[SIM_CODE_MAX + 1];
	const char *secret;            /* whsec_..., points into argv */
};

/* Everything the command line says; read-only once the loop runs. */
struct sim_opts {
	const char *listen;
	const char *tls_cert, *tls_key;
	struct sim_supplier *suppliers;
	size_t nsuppliers;
	double fail_rate, hang_rate, reject_rate;
	long slow_ms;
	int status;                    /* 0: no override */
	uint64_t seed;
	int seed_given;
	const char *callback_url;
	const char *ca_file;
	long accept_ms, ship_ms, deliver_ms;
	const char *log_level;
};

/* ---- faults.c: pure, no I/O and no clock ---- */

/* What happens to an attempt on a fulfillment endpoint before it is read. */
enum sim_fault {
	SIM_FAULT_NONE,                /* processed normally */
	SIM_FAULT_STATUS,              /* answered with --status, nothing else done */
	SIM_FAULT_FAIL,                /* answered 503 (--fail-rate) */
	SIM_FAULT_HANG,                /* never answered (--hang-rate) */
};

/* The seed used when --seed is not given, from the clock and the process id. */
uint64_t sim_fault_seed_default(const struct timespec *now, pid_t pid);
/* The first state of the random sequence for a seed (any seed, 0 included). */
uint64_t sim_fault_rng_init(uint64_t seed);
/* Picks the fault for one attempt, drawing from *rng as the rates say. */
enum sim_fault sim_fault_pick(const struct sim_opts *o, uint64_t *rng);
/* 1 when a new request is to be rejected (out of stock) rather than accepted. */
int sim_fault_reject(const struct sim_opts *o, uint64_t *rng);

#endif
