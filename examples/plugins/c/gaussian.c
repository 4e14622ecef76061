/* A correlated Gaussian log-density as a sampo plugin (C).
 *
 *   config = { mean = [...], cov = [[...], ...] }
 *
 * The context holds the mean, the inverse of the covariance's Cholesky
 * factor and the normalising constant; it is read-only after init, so all
 * threads of a rank may share it (SAMPO_SHARED). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "sampo.h"
#include "json_numbers.h"

#define MAX_DIM 64

typedef struct {
    size_t dim;
    double mean[MAX_DIM];
    double w[MAX_DIM * MAX_DIM]; /* W = L^-1, lower triangular: x'Σ^-1x = |W x|² */
    double log_norm;
} gaussian;

int sampo_abi_version(void) { return SAMPO_ABI_VERSION; }
int sampo_thread_safety(void) { return SAMPO_SHARED; }

int sampo_init(const char *state, size_t dim, const char *config_json, void **ctx,
               size_t *n_outputs, char *err, size_t err_len) {
    (void)state;
    if (dim == 0 || dim > MAX_DIM) {
        snprintf(err, err_len, "dimension %zu: this example handles 1 to %d", dim, MAX_DIM);
        return SAMPO_ERROR;
    }
    gaussian *g = calloc(1, sizeof *g);
    double cov[MAX_DIM * MAX_DIM], l[MAX_DIM * MAX_DIM] = {0};
    if (json_numbers(config_json, "mean", g->mean, MAX_DIM) != (int)dim) {
        snprintf(err, err_len, "config.mean: expected %zu numbers", dim);
        free(g);
        return SAMPO_ERROR;
    }
    if (json_numbers(config_json, "cov", cov, MAX_DIM * MAX_DIM) != (int)(dim * dim)) {
        snprintf(err, err_len, "config.cov: expected %zu × %zu numbers", dim, dim);
        free(g);
        return SAMPO_ERROR;
    }
    /* Cholesky: Σ = L L'. */
    for (size_t i = 0; i < dim; i++) {
        for (size_t j = 0; j <= i; j++) {
            double s = cov[i * dim + j];
            for (size_t k = 0; k < j; k++) s -= l[i * dim + k] * l[j * dim + k];
            if (i == j) {
                if (s <= 0) {
                    snprintf(err, err_len, "config.cov: not positive definite");
                    free(g);
                    return SAMPO_ERROR;
                }
                l[i * dim + i] = sqrt(s);
            } else {
                l[i * dim + j] = s / l[j * dim + j];
            }
        }
    }
    /* W = L^-1 by forward substitution, column by column. */
    double log_det = 0;
    for (size_t c = 0; c < dim; c++) {
        for (size_t i = 0; i < dim; i++) {
            double s = (i == c) ? 1.0 : 0.0;
            for (size_t k = 0; k < i; k++) s -= l[i * dim + k] * g->w[k * dim + c];
            g->w[i * dim + c] = s / l[i * dim + i];
        }
        log_det += 2 * log(l[c * dim + c]);
    }
    g->dim = dim;
    g->log_norm = -0.5 * ((double)dim * log(2 * M_PI) + log_det);
    *ctx = g;
    *n_outputs = 0;
    return SAMPO_OK;
}

int sampo_log_density(void *ctx, const double *x, size_t dim, double *out) {
    const gaussian *g = ctx;
    double quad = 0;
    for (size_t i = 0; i < dim; i++) {
        double z = 0;
        for (size_t k = 0; k <= i; k++) z += g->w[i * dim + k] * (x[k] - g->mean[k]);
        quad += z * z;
    }
    *out = g->log_norm - 0.5 * quad;
    return SAMPO_OK;
}

/* Optional: many points per call (sampo then evaluates a whole half of the
 * ensemble in one call per thread). Build with -DNO_BATCH to leave it out. */
#ifndef NO_BATCH
int sampo_log_density_batch(void *ctx, const double *x, size_t n, size_t dim, double *out) {
    for (size_t i = 0; i < n; i++) sampo_log_density(ctx, x + i * dim, dim, out + i);
    return SAMPO_OK;
}
#endif

void sampo_free(void *ctx) { free(ctx); }
