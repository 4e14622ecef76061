/* An Ornstein–Uhlenbeck process as a sampo process plugin (C), for
 * Monte Carlo paths (kind = "paths"):
 *
 *   process = { kind = "plugin", library = "examples/plugins/c/libou_process.so",
 *               dt = 0.01, config = { theta = 2.0, mu = 0.03, sigma = 0.01, x0 = 0.05, dt = 0.01 } }
 *
 * dX = θ (μ − X) dt + σ dW by its exact transition over dt:
 *   X ← μ + (X − μ) e^{−θ dt} + σ √((1 − e^{−2θ dt}) / (2θ)) · Z,
 * with Z drawn from the path's stream. It draws and computes exactly as
 * sampo's built-in `ou` process does, so the two give the same paths bit for
 * bit: a template for a process of your own (replace the step). The
 * context is read-only after init, so every thread may share it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "sampo.h"
#include "json_numbers.h"

typedef struct {
    double mu, x0, decay, vol;
} ou;

int sampo_abi_version(void) { return SAMPO_ABI_VERSION; }
int sampo_thread_safety(void) { return SAMPO_SHARED; }

int sampo_init(const char *state, size_t dim, const char *config_json, void **ctx,
               size_t *n_outputs, char *err, size_t err_len) {
    (void)state;
    (void)n_outputs;
    if (dim != 1) {
        snprintf(err, err_len, "a process has one value, not %zu", dim);
        return SAMPO_ERROR;
    }
    const char *keys[] = {"theta", "mu", "sigma", "x0", "dt"};
    double v[5];
    for (int i = 0; i < 5; i++) {
        if (json_numbers(config_json, keys[i], &v[i], 1) != 1) {
            snprintf(err, err_len, "config.%s: expected a number", keys[i]);
            return SAMPO_ERROR;
        }
    }
    double theta = v[0], sigma = v[2], dt = v[4];
    if (!(theta > 0) || !(sigma >= 0) || !(dt > 0)) {
        snprintf(err, err_len, "config: theta > 0, sigma >= 0 and dt > 0 are required");
        return SAMPO_ERROR;
    }
    ou *p = malloc(sizeof *p);
    if (!p) {
        snprintf(err, err_len, "out of memory");
        return SAMPO_ERROR;
    }
    p->mu = v[1];
    p->x0 = v[3];
    p->decay = exp(-theta * dt);
    p->vol = sigma * sqrt(-expm1(-2.0 * theta * dt) / (2.0 * theta));
    *ctx = p;
    return SAMPO_OK;
}

int sampo_process_start(void *ctx, const sampo_stream *rng, double *x) {
    (void)rng;
    *x = ((const ou *)ctx)->x0;
    return SAMPO_OK;
}

int sampo_process_step(void *ctx, const sampo_stream *rng, uint64_t step, double *x) {
    (void)step;
    const ou *p = ctx;
    double z = rng->normal(rng->state);
    *x = p->mu + (*x - p->mu) * p->decay + p->vol * z;
    return SAMPO_OK;
}

void sampo_free(void *ctx) { free(ctx); }
