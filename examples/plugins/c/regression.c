/* Linear regression y = a + b x + N(0, σ²) as a sampo plugin (C), reading
 * its data file in init:
 *
 *   config = { data = "examples/plugins/c/line.csv", noise_sd = 0.5 }
 *
 * The file has a header line and rows "x,y". Also a forward model: the
 * predicted y at every data point. Read-only context: SAMPO_SHARED. An
 * evaluation at a non-finite parameter fails with status 2, to show how a
 * failure is reported. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "sampo.h"
#include "json_numbers.h"

typedef struct {
    size_t n;
    double *x, *y;
    double noise_sd, log_norm;
} regression;

int sampo_abi_version(void) { return SAMPO_ABI_VERSION; }
int sampo_thread_safety(void) { return SAMPO_SHARED; }

int sampo_init(const char *state, size_t dim, const char *config_json, void **ctx,
               size_t *n_outputs, char *err, size_t err_len) {
    (void)state;
    char path[4096];
    double sd = 0;
    if (dim != 2) {
        snprintf(err, err_len, "a line has 2 parameters (intercept, slope), not %zu", dim);
        return SAMPO_ERROR;
    }
    if (json_string(config_json, "data", path, sizeof path) != 0) {
        snprintf(err, err_len, "config.data: the data file (CSV x,y) is missing");
        return SAMPO_ERROR;
    }
    if (json_numbers(config_json, "noise_sd", &sd, 1) != 1 || !(sd > 0)) {
        snprintf(err, err_len, "config.noise_sd: expected a positive number");
        return SAMPO_ERROR;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_len, "config.data: cannot open %s", path);
        return SAMPO_ERROR;
    }
    regression *r = calloc(1, sizeof *r);
    size_t cap = 64;
    r->x = malloc(cap * sizeof(double));
    r->y = malloc(cap * sizeof(double));
    char line[256];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (lineno == 1) continue; /* header */
        double xv, yv;
        if (sscanf(line, "%lf,%lf", &xv, &yv) != 2) {
            snprintf(err, err_len, "%s:%d: expected x,y", path, lineno);
            fclose(f);
            free(r->x), free(r->y), free(r);
            return SAMPO_ERROR;
        }
        if (r->n == cap) {
            cap *= 2;
            r->x = realloc(r->x, cap * sizeof(double));
            r->y = realloc(r->y, cap * sizeof(double));
        }
        r->x[r->n] = xv;
        r->y[r->n] = yv;
        r->n++;
    }
    fclose(f);
    r->noise_sd = sd;
    r->log_norm = -(double)r->n * (log(sd) + 0.5 * log(2 * M_PI));
    *ctx = r;
    *n_outputs = r->n;
    return SAMPO_OK;
}

int sampo_log_density(void *ctx, const double *p, size_t dim, double *out) {
    (void)dim;
    const regression *r = ctx;
    if (!isfinite(p[0]) || !isfinite(p[1])) return 2;
    double ss = 0;
    for (size_t i = 0; i < r->n; i++) {
        double e = (r->y[i] - (p[0] + p[1] * r->x[i])) / r->noise_sd;
        ss += e * e;
    }
    *out = r->log_norm - 0.5 * ss;
    return SAMPO_OK;
}

int sampo_forward(void *ctx, const double *p, size_t dim, double *y, size_t n_outputs) {
    (void)dim;
    const regression *r = ctx;
    for (size_t i = 0; i < n_outputs && i < r->n; i++) y[i] = p[0] + p[1] * r->x[i];
    return SAMPO_OK;
}

void sampo_free(void *ctx) {
    regression *r = ctx;
    free(r->x);
    free(r->y);
    free(r);
}
