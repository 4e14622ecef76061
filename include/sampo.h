/*
 * sampo.h — the C ABI of sampo's user models ("plugins"), version 1.
 *
 * A plugin is a shared library (.so) that sampo loads with dlopen, once per
 * MPI rank, for every state whose model is
 *
 *     model = { kind = "plugin", library = "./libmodel.so", config = { ... } }
 *
 * or, for Monte Carlo paths (kind = "paths"), whose process is
 *
 *     process = { kind = "plugin", library = "./libprocess.so", dt = 0.01, config = { ... } }
 *
 * It exports the functions below under exactly these names (C linkage; in
 * Fortran `bind(C, name="...")`, in Rust `#[no_mangle] extern "C"`). sampo
 * checks every rule it can before any work starts: a library that cannot be
 * loaded, that was built for another ABI version, that lacks a required
 * function, or whose init fails, stops `sampo check` and `sampo run` with
 * exit code 2 and a message naming the library, the function and the state.
 *
 * Rules for every function:
 *   - Parameters are C doubles, in the order of the state's `params`.
 *   - A status of 0 (SAMPO_OK) means success; anything else is a failure of
 *     the evaluation (a bug, a solver that did not converge, a file that
 *     vanished). sampo stops the run and reports the state, the walker or
 *     chain, the parameters, the seed and the status. A failure is NOT a
 *     zero probability: for a point the model rules out, return SAMPO_OK
 *     with *out = -INFINITY.
 *   - A NaN log-density is counted, reported at the end of the run, and
 *     treated as -INFINITY.
 *   - Functions must not call exit(), abort() or longjmp out, and must not
 *     write to stdout (sampo's tables go there; stderr is fine). A crash
 *     (segmentation fault) cannot be caught: it ends the process, and under
 *     MPI the launcher then ends the whole job.
 *   - sampo never calls a plugin from two threads at once unless the library
 *     declares it may (see sampo_thread_safety).
 */
#ifndef SAMPO_H
#define SAMPO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. */
#define SAMPO_ABI_VERSION 1

/* Status codes. Any non-zero value is a failure; these are suggestions. */
#define SAMPO_OK 0
#define SAMPO_ERROR 1

/* Thread safety, as returned by sampo_thread_safety(). */
/* One call at a time per process (global state, Fortran COMMON blocks):
 * sampo runs one thread per rank for such a model, so scale it with MPI
 * ranks (`mpiexec -n N`); `sampo check` says so. The default. */
#define SAMPO_SERIALIZED 0
/* One context, used by all the threads of a rank at once: log_density (and
 * the others) must be safe to call concurrently on the same context. */
#define SAMPO_SHARED 1
/* One context per thread: sampo calls init once per thread of its pool (the
 * first time that thread evaluates), and each context from one thread only. */
#define SAMPO_PER_THREAD 2

/* REQUIRED. Returns SAMPO_ABI_VERSION as the library saw it when compiled:
 *     int sampo_abi_version(void) { return SAMPO_ABI_VERSION; }
 * sampo refuses a library built for another version. */
int sampo_abi_version(void);

/* OPTIONAL. Returns SAMPO_SERIALIZED, SAMPO_SHARED or SAMPO_PER_THREAD.
 * A library without it is treated as SAMPO_SERIALIZED. */
int sampo_thread_safety(void);

/* REQUIRED. Prepares a context for one state.
 *   state        the state's name (UTF-8, NUL-terminated).
 *   dim          the number of parameters (the length of the prior).
 *   config_json  the state's `config` table as a JSON object (UTF-8,
 *                NUL-terminated; "{}" when there is none). Relative paths in
 *                it are as written: sampo runs in the directory it was
 *                started from.
 *   ctx          receives an opaque pointer handed back to every other call
 *                for this state (may be NULL if the library keeps nothing).
 *   n_outputs    receives the length of sampo_forward's output (0 if the
 *                library has no forward model).
 *   err, err_len on failure, a NUL-terminated message of at most err_len
 *                bytes (including the NUL), which sampo shows to the user.
 * Returns SAMPO_OK, or a failure status with a message in err.
 * Called once per state per rank (per thread, with SAMPO_PER_THREAD), before
 * any evaluation; `sampo check` calls it too, to validate the config. */
int sampo_init(const char *state, size_t dim, const char *config_json, void **ctx,
               size_t *n_outputs, char *err, size_t err_len);

/* REQUIRED for a model that is sampled (kinds ensemble, chains, smc); a
 * library used only for batch forward evaluation may leave it out. The
 * log-density (log-likelihood, normalised if evidences are to mean
 * something; the prior is sampo's) at x[0..dim-1], into *out. */
int sampo_log_density(void *ctx, const double *x, size_t dim, double *out);

/* OPTIONAL. n log-densities at once, for vectorised codes: point i is
 * x[i*dim .. i*dim+dim-1], its value goes to out[i]. Must give exactly what
 * n calls of sampo_log_density would. */
int sampo_log_density_batch(void *ctx, const double *x, size_t n, size_t dim, double *out);

/* REQUIRED for kind = "batch" (batch forward evaluation), else OPTIONAL.
 * The n_outputs values predicted at x[0..dim-1], into y[0..n_outputs-1]
 * (n_outputs as sampo_init reported it, at least 1). A non-zero status
 * fails the item: the run stops, or with on_error = "record" the status is
 * stored with the item and its outputs are NaN. */
int sampo_forward(void *ctx, const double *x, size_t dim, double *y, size_t n_outputs);

/* OPTIONAL. Names of the n_outputs outputs of sampo_forward (a time gate,
 * a frequency, a station), for the output file and the tables: written
 * into names as one NUL-terminated string of at most len bytes, the names
 * separated by '\n', each 1 to 64 bytes without control characters.
 * Returns SAMPO_OK, or a failure (the outputs are then named y0, y1, …).
 * A state's `outputs` in the spec takes precedence. */
int sampo_output_names(void *ctx, char *names, size_t len);

/* ---- Processes (kind = "paths") -------------------------------------- */

/* A path's random stream, lent by sampo for the duration of one call.
 * Every path has its own stream, keyed by (seed, state, path): draw all the
 * randomness of a process from it, never from rand() or a generator of the
 * library's own, and each path can be recomputed alone, the output is the
 * same on any ranks × threads and across a pause and resume, and a process
 * drawing as a built-in one does gets the built-in one's paths bit for bit.
 * Call the functions through the struct, passing its `state`:
 *     double z = rng->normal(rng->state);
 * Do not keep the pointer after the call returns. */
typedef struct sampo_stream {
    void *state;
    double (*uniform)(void *state);   /* uniform on [0, 1), 53 random bits */
    double (*normal)(void *state);    /* standard normal */
    uint64_t (*bits)(void *state);    /* 64 random bits */
} sampo_stream;

/* REQUIRED for a process (both functions). One scalar value per path:
 * sampo_init is called with dim = 1 (n_outputs is ignored), then for each
 * path sampo_process_start writes its value at step 0 into *x, and
 * sampo_process_step advances *x from step - 1 to step (step = 1, 2, …,
 * the run's `steps`), in order, from one thread. The time of a step is
 * step × the process's `dt` (1 when not given). sampo records the values
 * and computes the statistics; a non-zero status stops the run, naming the
 * state, the path, the step and the seed. With SAMPO_SERIALIZED the library
 * is held for a whole path; with SAMPO_SHARED or SAMPO_PER_THREAD paths run
 * on every thread of a rank. */
int sampo_process_start(void *ctx, const sampo_stream *rng, double *x);
int sampo_process_step(void *ctx, const sampo_stream *rng, uint64_t step, double *x);

/* REQUIRED. Releases a context made by sampo_init (called once per context,
 * when sampo is done with it; never while it is in use). */
void sampo_free(void *ctx);

#ifdef __cplusplus
}
#endif

#endif /* SAMPO_H */
