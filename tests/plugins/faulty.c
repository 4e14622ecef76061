/* A plugin for sampo's tests of what goes wrong. Compiled by tests/plugins.rs
 * in variants:
 *   -DABI=n        reports ABI version n (default SAMPO_ABI_VERSION)
 *   -DNO_FREE      leaves out sampo_free (a missing required symbol)
 *   -DNO_LOG_DENSITY  leaves out sampo_log_density (a forward model only)
 *   -DNO_FORWARD   leaves out sampo_forward (a log-density only)
 *   -DSAFETY=n     sampo_thread_safety returns n (default SAMPO_SHARED)
 * and config keys:
 *   fail_after     evaluations fail with status 3 after this many (per context)
 *   nan_above      the log-density is NaN where x[0] > this
 *   inf_above      the log-density is +inf where x[0] > this
 *   fail_init      init fails with a message
 *   sleep_init     init sleeps this many seconds first (an init that hangs)
 *   exit_init      init calls exit(0), as a Fortran STOP does
 *   exit_after     the log-density calls exit(0) at this evaluation (per context)
 *   hang_after     the log-density never returns from this evaluation (per context)
 *   hang_on_rank   with hang_after: only on this MPI rank
 *   fail_on_rank   init fails on this MPI rank only (OMPI_COMM_WORLD_RANK)
 *   crash_on_rank  a segmentation fault on this MPI rank at its 1000th call
 *   outputs        n_outputs of sampo_forward (default 0: no forward model);
 *                  output k is (k + 1) · Σ x²
 *   fail_above     sampo_forward fails with status 5 where x[0] > this
 *   jitter         sampo_forward adds jitter × (its calls so far) to each
 *                  output: not deterministic, for validation to catch
 *   instances      sampo_forward's last output is the number of contexts this
 *                  copy of the library has made (a global, as a COMMON block
 *                  would be): 1 on every thread when each has a private copy
 *   scratch        sampo_forward computes through a global buffer (as Fortran
 *                  codes do through COMMON blocks): wrong if two threads of one
 *                  copy call it at once
 * The density is a standard normal in every parameter. As a process (kind =
 * "paths") it is a walk of uniform steps from 0 whose steps fail with
 * status 3 after fail_after of them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sampo.h"
#include "../../examples/plugins/c/json_numbers.h"

#ifndef ABI
#define ABI SAMPO_ABI_VERSION
#endif
#ifndef SAFETY
#define SAFETY SAMPO_SHARED
#endif

/* This copy of the library's globals. */
static unsigned long contexts_made;
static volatile double scratch[64];

typedef struct {
    double fail_after, nan_above, inf_above, outputs, fail_above, jitter, instances, scratch;
    double exit_after, hang_after;
    int crash;
    unsigned long calls;
} faulty;

int sampo_abi_version(void) { return ABI; }
int sampo_thread_safety(void) { return SAFETY; }

int sampo_init(const char *state, size_t dim, const char *config, void **ctx,
               size_t *n_outputs, char *err, size_t err_len) {
    (void)dim;
    double rank = -1;
    const char *mine = getenv("OMPI_COMM_WORLD_RANK");
    double nap = 0;
    if (json_numbers(config, "sleep_init", &nap, 1) == 1 && nap > 0) sleep((unsigned)nap);
    if (strstr(config, "\"exit_init\"")) exit(0);
    if (strstr(config, "\"fail_init\"")) {
        snprintf(err, err_len, "cannot prepare state %s: fail_init was asked for", state);
        return 7;
    }
    if (json_numbers(config, "fail_on_rank", &rank, 1) == 1 && mine && atoi(mine) == (int)rank) {
        snprintf(err, err_len, "no data on this rank");
        return 8;
    }
    faulty *f = calloc(1, sizeof *f);
    f->fail_after = INFINITY;
    f->nan_above = INFINITY;
    f->inf_above = INFINITY;
    f->fail_above = INFINITY;
    f->exit_after = INFINITY;
    f->hang_after = INFINITY;
    json_numbers(config, "fail_after", &f->fail_after, 1);
    json_numbers(config, "exit_after", &f->exit_after, 1);
    json_numbers(config, "hang_after", &f->hang_after, 1);
    if (json_numbers(config, "hang_on_rank", &rank, 1) == 1 && !(mine && atoi(mine) == (int)rank))
        f->hang_after = INFINITY;
    json_numbers(config, "outputs", &f->outputs, 1);
    json_numbers(config, "fail_above", &f->fail_above, 1);
    json_numbers(config, "jitter", &f->jitter, 1);
    json_numbers(config, "instances", &f->instances, 1);
    json_numbers(config, "scratch", &f->scratch, 1);
    contexts_made++;
    json_numbers(config, "nan_above", &f->nan_above, 1);
    json_numbers(config, "inf_above", &f->inf_above, 1);
    if (json_numbers(config, "crash_on_rank", &rank, 1) == 1 && mine && atoi(mine) == (int)rank)
        f->crash = 1;
    *ctx = f;
    *n_outputs = (size_t)f->outputs;
    return SAMPO_OK;
}

#ifndef NO_FORWARD
int sampo_forward(void *ctx, const double *x, size_t dim, double *y, size_t n_outputs) {
    faulty *f = ctx;
    unsigned long calls = ++f->calls;
    if (x[0] > f->fail_above) return 5;
    double s = 0;
    for (size_t i = 0; i < dim; i++) s += x[i] * x[i];
    for (size_t k = 0; k < n_outputs; k++) y[k] = (double)(k + 1) * s + f->jitter * (double)calls;
    if (f->scratch != 0) {
        /* Through the global buffer, slowly enough for another thread to
         * write it in between. */
        for (size_t k = 0; k < n_outputs && k < 64; k++) scratch[k] = y[k];
        for (volatile int spin = 0; spin < 20000; spin++) {}
        for (size_t k = 0; k < n_outputs && k < 64; k++) y[k] = scratch[k];
    }
    if (f->instances != 0 && n_outputs > 0) y[n_outputs - 1] = (double)contexts_made;
    return SAMPO_OK;
}
#endif

#ifndef NO_LOG_DENSITY
int sampo_log_density(void *ctx, const double *x, size_t dim, double *out) {
    faulty *f = ctx;
    /* Shared among threads in the tests that count: a race on calls only
     * moves the failure by a few evaluations. */
    if ((double)(++f->calls) > f->fail_after) return 3;
    if ((double)f->calls == f->exit_after) exit(0);
    if ((double)f->calls == f->hang_after)
        for (;;) sleep(1000); /* a call that never returns */
    if (f->crash && f->calls == 1000) *(volatile int *)0 = 1; /* a real fault, not raise() */
    if (x[0] > f->nan_above) {
        *out = NAN;
        return SAMPO_OK;
    }
    if (x[0] > f->inf_above) {
        *out = INFINITY;
        return SAMPO_OK;
    }
    double s = 0;
    for (size_t i = 0; i < dim; i++) s += x[i] * x[i];
    *out = -0.5 * s - 0.5 * (double)dim * log(2 * M_PI);
    return SAMPO_OK;
}
#endif

int sampo_process_start(void *ctx, const sampo_stream *rng, double *x) {
    (void)ctx;
    (void)rng;
    *x = 0;
    return SAMPO_OK;
}

int sampo_process_step(void *ctx, const sampo_stream *rng, uint64_t step, double *x) {
    faulty *f = ctx;
    (void)step;
    if ((double)(++f->calls) > f->fail_after) return 3;
    *x += rng->uniform(rng->state);
    return SAMPO_OK;
}

#ifndef NO_FREE
void sampo_free(void *ctx) { free(ctx); }
#endif
