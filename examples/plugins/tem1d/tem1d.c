/* TEM1D as a sampo forward model: the time-domain electromagnetic response
 * (dB/dt at TEM1D's time gates) of a layered earth, for batch forward
 * evaluation. TEM1D (Fortran 77, MIT) is fetched from PyPI's pytem1d and
 * compiled by scripts/fetch-tem1d.sh; this file is the only code of ours in
 * the library. See README.md for the parameters and config keys.
 *
 * The call is the one pytem1d's `run_tem1d` makes: TEM1D's entry point
 * `SUBROUTINE TEM1D` (TEM1D.for), every argument by reference, arrays of its
 * fixed size N_ARR = 512 (ARRAYSDIMBL.INC). TEM1D copies its arguments into
 * COMMON blocks and keeps filter tables in SAVEd variables, so the library is
 * SAMPO_SERIALIZED: one call at a time per process.
 *
 * It has no log-density: it is for `sampo_forward` only. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sampo.h"

/* TEM1D's array size (ARRAYSDIMBL.INC) and its filter array size (TEM1D.for). */
#define N_ARR 512
#define N_FILT 16

/* Statuses of sampo_forward besides SAMPO_OK. */
#define STATUS_BAD_POINT 2   /* a resistivity or thickness not positive and finite */
#define STATUS_BAD_CALL 3    /* dim or n_outputs not those of init */
#define STATUS_GATES 4       /* TEM1D returned another number of gates than at init */

/* TEM1D.for, compiled by gfortran: INTEGER*4 and REAL*8, all by reference. */
void tem1d_(const int32_t *imlm, const int32_t *nlay, const double *rhon, const double *depn,
            const int32_t *imodip, const double *chaip, const double *tauip, const double *powip,
            const double *txarea, const double *rtxrx, const int32_t *izeropos,
            const int32_t *ishtx1, const int32_t *ishtx2, const int32_t *ishrx1,
            const int32_t *ishrx2, const double *htx1, const double *htx2, const double *hrx1,
            const double *hrx2, const int32_t *npoly, const double *xpoly, const double *ypoly,
            const double *x0rx, const double *y0rx, const int32_t *iresptype,
            const int32_t *ideriv, const int32_t *irep, const int32_t *iwconv,
            const int32_t *nfilt, const double *repfreq, const double *filtfreq,
            const int32_t *nwave, const double *twave, const double *awave, int32_t *ntout,
            double *timesout, double *respout, double *drespout);

/* One state's instrument, in TEM1D's argument types, plus its output buffers. */
typedef struct {
    size_t dim, n_gates;
    int32_t nlay, imodip, izeropos, ishtx1, ishtx2, ishrx1, ishrx2, npoly;
    int32_t iresptype, irep, iwconv, nfilt, nwave;
    double txarea, rtxrx, htx1, htx2, hrx1, hrx2, x0rx, y0rx, repfreq;
    double rhon[N_ARR], depn[N_ARR];
    double chaip[N_ARR], tauip[N_ARR], powip[N_ARR];
    double xpoly[N_ARR], ypoly[N_ARR];
    double filtfreq[N_FILT];
    double twave[N_ARR], awave[N_ARR];
    double times[N_ARR], resp[N_ARR];
    double *dresp; /* N_ARR × N_ARR: TEM1D's derivative output, unused (IDERIV = 0) */
} tem1d;

int sampo_abi_version(void) { return SAMPO_ABI_VERSION; }
int sampo_thread_safety(void) { return SAMPO_SERIALIZED; }

/* The config keys, as pytem1d.run_tem1d names its arguments. */
static const char *const KEYS[] = {
    "layers",        "tx_area",         "tx_rx_separation", "tx_height",
    "rx_height",     "tx_height2",      "rx_height2",       "tx_polarity",
    "rx_polarity",   "tx_polarity2",    "rx_polarity2",     "zero_coupled",
    "response_type", "waveform",        "filter_frequencies", "model_repetition",
    "repetition_frequency", "ip_params", "polygon_vertices", "rx_position",
};

/* The config's parser: the object, and the first error met (then it stops). */
typedef struct {
    const cJSON *root;
    char *err;
    size_t err_len;
    int failed;
} config;

static void fail(config *c, const char *fmt, const char *key, const char *what) {
    if (c->failed) return;
    snprintf(c->err, c->err_len, fmt, key, what);
    c->failed = 1;
}

/* A finite number at `key` (default `dflt` when absent). */
static double number(config *c, const cJSON *obj, const char *key, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return dflt;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
        fail(c, "config.%s: expected a finite number%s", key, "");
        return dflt;
    }
    return v->valuedouble;
}

/* A polarity: -1, 0 or 1. */
static int32_t polarity(config *c, const char *key, int32_t dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->root, key);
    if (!v) return dflt;
    if (!cJSON_IsNumber(v) || (v->valuedouble != -1 && v->valuedouble != 0 && v->valuedouble != 1)) {
        fail(c, "config.%s: expected -1, 0 or 1%s", key, "");
        return dflt;
    }
    return (int32_t)v->valuedouble;
}

static int boolean(config *c, const char *key, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->root, key);
    if (!v) return dflt;
    if (!cJSON_IsBool(v)) {
        fail(c, "config.%s: expected true or false%s", key, "");
        return dflt;
    }
    return cJSON_IsTrue(v);
}

/* An array of at most `max` finite numbers into out; its length, or -1 when absent. */
static int numbers(config *c, const cJSON *obj, const char *key, double *out, int max) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return -1;
    if (!cJSON_IsArray(v)) {
        fail(c, "config.%s: expected an array of numbers%s", key, "");
        return 0;
    }
    int n = cJSON_GetArraySize(v);
    if (n > max) {
        char what[64];
        snprintf(what, sizeof what, " (at most %d, TEM1D's array size)", max);
        fail(c, "config.%s: too many values%s", key, what);
        return 0;
    }
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble)) {
            fail(c, "config.%s: expected an array of finite numbers%s", key, "");
            return 0;
        }
        out[i++] = e->valuedouble;
    }
    return n;
}

/* The distance from (px, py) to the segment (x1, y1)–(x2, y2). */
static double segment_distance(double x1, double y1, double x2, double y2, double px, double py) {
    double dx = x2 - x1, dy = y2 - y1, len2 = dx * dx + dy * dy;
    double s = len2 > 0 ? ((px - x1) * dx + (py - y1) * dy) / len2 : 0;
    s = s < 0 ? 0 : s > 1 ? 1 : s;
    return hypot(px - (x1 + s * dx), py - (y1 + s * dy));
}

/* TEM1D's Hankel transform (FHTCONV) takes radial distances from 1e-6 m;
 * below that it prints to stdout and clamps. The instrument is refused
 * before it gets there: 1e-5 m leaves a margin and is no real instrument. */
#define MIN_RADIUS 1e-5

/* Reads the config into t (defaults of pytem1d 0.1.2's run_tem1d). */
static void read_config(config *c, tem1d *t) {
    const cJSON *root = c->root, *item;
    cJSON_ArrayForEach(item, root) {
        size_t k = 0;
        while (k < sizeof KEYS / sizeof KEYS[0] && strcmp(item->string, KEYS[k]) != 0) k++;
        if (k == sizeof KEYS / sizeof KEYS[0]) {
            fail(c, "config.%s: unknown key; the keys are %s", item->string,
                 "layers, tx_area, tx_rx_separation, tx_height, rx_height, tx_height2, "
                 "rx_height2, tx_polarity, rx_polarity, tx_polarity2, rx_polarity2, "
                 "zero_coupled, response_type, waveform, filter_frequencies, "
                 "model_repetition, repetition_frequency, ip_params, polygon_vertices, "
                 "rx_position (see examples/plugins/tem1d/README.md)");
            return;
        }
    }

    t->txarea = number(c, root, "tx_area", 314.16);
    t->rtxrx = number(c, root, "tx_rx_separation", 0.0);
    t->htx1 = number(c, root, "tx_height", 1.0);
    t->hrx1 = number(c, root, "rx_height", 1.0);
    t->htx2 = number(c, root, "tx_height2", 0.0);
    t->hrx2 = number(c, root, "rx_height2", 0.0);
    t->ishtx1 = polarity(c, "tx_polarity", 1);
    t->ishrx1 = polarity(c, "rx_polarity", 1);
    t->ishtx2 = polarity(c, "tx_polarity2", 0);
    t->ishrx2 = polarity(c, "rx_polarity2", 0);
    t->izeropos = boolean(c, "zero_coupled", 0);
    if (!(t->txarea > 0)) fail(c, "config.%s: expected a positive number%s", "tx_area", "");
    if (t->rtxrx < 0) fail(c, "config.%s: expected a number >= 0%s", "tx_rx_separation", "");
    if (t->txarea > 0 && sqrt(t->txarea / M_PI) < MIN_RADIUS)
        fail(c, "config.%s: the loop's radius is below TEM1D's range (1e-5 m)%s", "tx_area", "");

    const cJSON *rt = cJSON_GetObjectItemCaseSensitive(root, "response_type");
    t->iresptype = 0;
    if (rt) {
        const char *s = cJSON_GetStringValue(rt);
        if (s && strcmp(s, "step") == 0) t->iresptype = 0;
        else if (s && strcmp(s, "impulse") == 0) t->iresptype = 1;
        else if (s && strcmp(s, "convolved") == 0) t->iresptype = 2;
        else fail(c, "config.%s: expected \"step\", \"impulse\" or \"convolved\"%s", "response_type", "");
    }
    int convolved = t->iresptype == 2;
    t->iwconv = convolved;

    const cJSON *wave = cJSON_GetObjectItemCaseSensitive(root, "waveform");
    t->nwave = 0;
    if (wave) {
        if (!cJSON_IsObject(wave)) {
            fail(c, "config.%s: expected { times = [...], amplitudes = [...] }%s", "waveform", "");
        } else {
            int nt = numbers(c, wave, "times", t->twave, N_ARR);
            int na = numbers(c, wave, "amplitudes", t->awave, N_ARR);
            if (!c->failed && (nt < 2 || nt != na))
                fail(c, "config.%s: expected times and amplitudes of the same length, at least 2%s",
                     "waveform", "");
            for (int i = 1; !c->failed && i < nt; i++)
                if (!(t->twave[i] > t->twave[i - 1]))
                    fail(c, "config.%s: times must be strictly increasing%s", "waveform", "");
            t->nwave = nt > 0 ? nt : 0;
        }
        if (!convolved)
            fail(c, "config.%s: a waveform is used only with response_type = \"convolved\"%s",
                 "waveform", "");
    } else if (convolved) {
        fail(c, "config.%s: response_type = \"convolved\" needs a waveform%s", "waveform", "");
    }

    int nf = numbers(c, root, "filter_frequencies", t->filtfreq, N_FILT);
    t->nfilt = nf > 0 ? nf : 0;
    for (int i = 0; i < t->nfilt; i++)
        if (!(t->filtfreq[i] > 0))
            fail(c, "config.%s: frequencies must be positive (Hz)%s", "filter_frequencies", "");

    t->irep = boolean(c, "model_repetition", 0);
    t->repfreq = number(c, root, "repetition_frequency", 0.0);
    if (t->irep) {
        if (!convolved)
            fail(c, "config.%s: repetition is modelled only with response_type = \"convolved\"%s",
                 "model_repetition", "");
        if (!(t->repfreq > 0))
            fail(c, "config.%s: expected a positive frequency (Hz) with model_repetition%s",
                 "repetition_frequency", "");
        /* TEMRESP stops the process for a waveform longer than a half-period. */
        else if (t->nwave > 0 && fabs(t->twave[0]) > 0.5 / t->repfreq)
            fail(c, "config.%s: the waveform is longer than a half-period of the repetition%s",
                 "waveform", "");
    }

    double poly[2 * N_ARR];
    const cJSON *pv = cJSON_GetObjectItemCaseSensitive(root, "polygon_vertices");
    t->npoly = 0;
    if (pv) {
        /* TEM1D repeats the first vertex after the last: N_ARR - 1 at most. */
        int n = cJSON_IsArray(pv) ? cJSON_GetArraySize(pv) : -1;
        if (n < 3 || n > N_ARR - 1) {
            fail(c, "config.%s: expected 3 to 511 vertices [x, y] (m)%s", "polygon_vertices", "");
        } else {
            const cJSON *v;
            int i = 0;
            cJSON_ArrayForEach(v, pv) {
                if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 ||
                    !cJSON_IsNumber(cJSON_GetArrayItem(v, 0)) ||
                    !cJSON_IsNumber(cJSON_GetArrayItem(v, 1))) {
                    fail(c, "config.%s: every vertex is [x, y] (m)%s", "polygon_vertices", "");
                    break;
                }
                t->xpoly[i] = cJSON_GetArrayItem(v, 0)->valuedouble;
                t->ypoly[i] = cJSON_GetArrayItem(v, 1)->valuedouble;
                if (!isfinite(t->xpoly[i]) || !isfinite(t->ypoly[i]))
                    fail(c, "config.%s: every vertex is [x, y] (m), finite%s", "polygon_vertices", "");
                i++;
            }
            t->npoly = n;
        }
    }
    int nrx = numbers(c, root, "rx_position", poly, 2);
    if (nrx >= 0 && nrx != 2) fail(c, "config.%s: expected [x, y] (m)%s", "rx_position", "");
    t->x0rx = nrx == 2 ? poly[0] : 0.0;
    t->y0rx = nrx == 2 ? poly[1] : 0.0;
    if (nrx >= 0 && !pv) fail(c, "config.%s: used only with polygon_vertices%s", "rx_position", "");
    for (int i = 0; !c->failed && i < t->npoly; i++) {
        int j = (i + 1) % t->npoly;
        if (segment_distance(t->xpoly[i], t->ypoly[i], t->xpoly[j], t->ypoly[j], t->x0rx,
                             t->y0rx) < MIN_RADIUS)
            fail(c, "config.%s: the receiver lies on the transmitter loop%s", "rx_position", "");
    }
}

/* ip_params = { chargeabilities, time_constants, powers }, one value per layer. */
static void read_ip(config *c, tem1d *t) {
    const cJSON *ip = cJSON_GetObjectItemCaseSensitive(c->root, "ip_params");
    t->imodip = 0;
    if (!ip) return;
    if (!cJSON_IsObject(ip)) {
        fail(c, "config.%s: expected { chargeabilities, time_constants, powers }%s", "ip_params", "");
        return;
    }
    const char *names[3] = {"chargeabilities", "time_constants", "powers"};
    double *arrays[3] = {t->chaip, t->tauip, t->powip};
    for (int k = 0; k < 3; k++) {
        int n = numbers(c, ip, names[k], arrays[k], N_ARR);
        if (c->failed) return;
        if (n != t->nlay) {
            char what[96];
            snprintf(what, sizeof what, " (ip_params.%s: %d values for %d layers)", names[k],
                     n < 0 ? 0 : n, (int)t->nlay);
            fail(c, "config.%s: one value per layer%s", "ip_params", what);
            return;
        }
    }
    for (int i = 0; i < t->nlay; i++) {
        if (!(t->chaip[i] >= 0 && t->chaip[i] <= 1))
            fail(c, "config.%s: chargeabilities must be in [0, 1]%s", "ip_params", "");
        if (!(t->tauip[i] > 0))
            fail(c, "config.%s: time_constants must be positive (s)%s", "ip_params", "");
        if (!(t->powip[i] >= 0 && t->powip[i] <= 1))
            fail(c, "config.%s: powers must be in [0, 1]%s", "ip_params", "");
    }
    t->imodip = 1;
}

/* Calls TEM1D at x (resistivities, then thicknesses); the gates' count, or -1
 * if x is not a layered earth (a value not positive and finite). */
static int run(tem1d *t, const double *x) {
    size_t n = (size_t)t->nlay;
    for (size_t i = 0; i < t->dim; i++)
        if (!(x[i] > 0) || !isfinite(x[i])) return -1;
    /* Depths of the layers' tops, summed in order as pytem1d's callers do
     * (numpy.cumsum): TEM1D takes depths and differences them again. */
    t->depn[0] = 0.0;
    for (size_t i = 0; i < n; i++) t->rhon[i] = x[i];
    for (size_t i = 1; i < n; i++) t->depn[i] = t->depn[i - 1] + x[n + i - 1];
    static const int32_t imlm = 0, ideriv = 0;
    int32_t ntout = 0;
    tem1d_(&imlm, &t->nlay, t->rhon, t->depn, &t->imodip, t->chaip, t->tauip, t->powip,
           &t->txarea, &t->rtxrx, &t->izeropos, &t->ishtx1, &t->ishtx2, &t->ishrx1, &t->ishrx2,
           &t->htx1, &t->htx2, &t->hrx1, &t->hrx2, &t->npoly, t->xpoly, t->ypoly, &t->x0rx,
           &t->y0rx, &t->iresptype, &ideriv, &t->irep, &t->iwconv, &t->nfilt, &t->repfreq,
           t->filtfreq, &t->nwave, t->twave, t->awave, &ntout, t->times, t->resp, t->dresp);
    return ntout;
}

int sampo_init(const char *state, size_t dim, const char *config_json, void **ctx,
               size_t *n_outputs, char *err, size_t err_len) {
    (void)state;
    if (dim % 2 == 0 || dim > 2 * N_ARR - 1) {
        snprintf(err, err_len,
                 "%zu parameters: a model of N layers has 2N-1 (N resistivities, then N-1 "
                 "thicknesses), N from 1 to %d", dim, N_ARR);
        return SAMPO_ERROR;
    }
    cJSON *root = cJSON_Parse(config_json);
    if (!cJSON_IsObject(root)) {
        snprintf(err, err_len, "config: not a JSON object");
        cJSON_Delete(root);
        return SAMPO_ERROR;
    }
    tem1d *t = calloc(1, sizeof *t);
    if (t) t->dresp = calloc((size_t)N_ARR * N_ARR, sizeof(double));
    if (!t || !t->dresp) {
        snprintf(err, err_len, "out of memory");
        if (t) free(t);
        cJSON_Delete(root);
        return SAMPO_ERROR;
    }
    t->dim = dim;
    t->nlay = (int32_t)((dim + 1) / 2);

    config c = {root, err, err_len, 0};
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(root, "layers");
    if (layers && !cJSON_IsNumber(layers)) {
        fail(&c, "config.%s: expected the number of layers%s", "layers", "");
    } else if (layers && layers->valuedouble != t->nlay) {
        snprintf(err, err_len,
                 "config.layers = %g, but the state has %zu parameters, which are %d layers "
                 "(N resistivities, then N-1 thicknesses)", layers->valuedouble, dim, (int)t->nlay);
        c.failed = 1;
    }
    read_config(&c, t);
    read_ip(&c, t);
    /* TEMRESPPOLY (a polygonal loop without IP) sets its last time to two
     * half-periods of the repetition even when there is none: from an unset
     * variable, so its gates would be arbitrary. TEMRESPPOLYIP does not. */
    if (t->npoly > 0 && !t->imodip && !t->irep)
        fail(&c, "config.%s: TEM1D needs model_repetition (with response_type = \"convolved\", "
                 "a waveform and a repetition_frequency) for a polygonal loop without ip_params: "
                 "without it the last time of its gates is unset%s", "polygon_vertices", "");
    cJSON_Delete(root);
    if (c.failed) {
        sampo_free(t);
        return SAMPO_ERROR;
    }

    /* The gates depend on the instrument alone (TEMRESP: 10 per decade from
     * 10 ns, cut by repetition and waveform), not on the earth: one call on a
     * reference earth of 100 ohm-m layers 10 m thick counts them. */
    double reference[2 * N_ARR - 1];
    for (size_t i = 0; i < dim; i++) reference[i] = i < (size_t)t->nlay ? 100.0 : 10.0;
    int n = run(t, reference);
    if (n <= 0 || n > N_ARR) {
        snprintf(err, err_len, "TEM1D returned %d time gates for this instrument", n);
        sampo_free(t);
        return SAMPO_ERROR;
    }
    t->n_gates = (size_t)n;
    *ctx = t;
    *n_outputs = t->n_gates;
    return SAMPO_OK;
}

int sampo_forward(void *ctx, const double *x, size_t dim, double *y, size_t n_outputs) {
    tem1d *t = ctx;
    if (dim != t->dim || n_outputs != t->n_gates) return STATUS_BAD_CALL;
    int n = run(t, x);
    if (n < 0) return STATUS_BAD_POINT;
    if ((size_t)n != t->n_gates) return STATUS_GATES;
    memcpy(y, t->resp, n_outputs * sizeof(double));
    return SAMPO_OK;
}

/* The outputs' names: each gate's time in seconds, "t=1.000e-08". */
int sampo_output_names(void *ctx, char *names, size_t len) {
    const tem1d *t = ctx;
    size_t at = 0;
    for (size_t k = 0; k < t->n_gates; k++) {
        int w = snprintf(names + at, len - at, "%st=%.3e", k ? "\n" : "", t->times[k]);
        if (w < 0 || (size_t)w >= len - at) return SAMPO_ERROR;
        at += (size_t)w;
    }
    return SAMPO_OK;
}

/* Not part of sampo's ABI: the gates' times (s) of a context, for readers of
 * the outputs (the test checks them against pytem1d's). Returns how many. */
size_t tem1d_gate_times(const void *ctx, double *times, size_t n) {
    const tem1d *t = ctx;
    size_t m = n < t->n_gates ? n : t->n_gates;
    memcpy(times, t->times, m * sizeof(double));
    return t->n_gates;
}

void sampo_free(void *ctx) {
    tem1d *t = ctx;
    if (!t) return;
    free(t->dresp);
    free(t);
}
