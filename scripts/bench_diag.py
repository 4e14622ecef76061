"""The peers of examples/bench_diag.rs, for scripts/bench-chains.sh (run with
the venv's python): ArviZ's summary and emcee's τ on chains of the same shape.

    bench_diag.py --chains 8 --draws 1000000 --phi 0.9 --repeat 3

Builds the same kind of data as the example (AR(1) chains with unit
stationary variance; numpy's generator, so not the same numbers), then times

    arviz.summary(data)        mean, sd, 94% HDI, MCSE of the mean and sd,
                               bulk- and tail-ESS, rank-normalised R-hat
    arviz diagnostics alone    az.rhat, az.ess (bulk, tail), az.mcse (mean):
                               what sampo::diag::diagnose computes, minus the
                               quantiles and their MCSE
    emcee.autocorr.integrated_time   emcee's τ, as sampo::diag::integrated_time

and prints key=value lines: the fastest and slowest of --repeat, and the
peak resident memory of the process (ru_maxrss) after each.
"""

import argparse
import resource
import time


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def ar1(chains, draws, phi, seed=1):
    import numpy as np

    rng = np.random.default_rng(seed)
    e = rng.standard_normal((chains, draws)) * np.sqrt(1.0 - phi * phi)
    x = np.empty((chains, draws))
    x[:, 0] = rng.standard_normal(chains)
    # One numpy step per draw over all chains: a few seconds for 10^6 draws
    # (scipy.signal.lfilter would be faster; scipy is not in the venv).
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x


def timed(repeat, f):
    fastest, slowest, out = float("inf"), 0.0, None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = f()
        s = time.perf_counter() - t0
        fastest, slowest = min(fastest, s), max(slowest, s)
    return fastest, slowest, out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chains", type=int, default=8)
    p.add_argument("--draws", type=int, default=1_000_000)
    p.add_argument("--phi", type=float, default=0.9)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()

    import arviz as az
    import emcee
    import numpy as np

    x = ar1(a.chains, a.draws, a.phi)
    print(f"data_peak_mib={peak_mib():.1f}")
    idata = az.convert_to_inference_data(x)

    fast, slow, table = timed(a.repeat, lambda: az.summary(idata))
    print(f"arviz_summary_seconds={fast:.4f}")
    print(f"arviz_summary_seconds_slowest={slow:.4f}")
    print(f"peak_rss_mib_after_arviz_summary={peak_mib():.1f}")

    def diagnostics():
        return (az.rhat(idata), az.ess(idata, method="bulk"), az.ess(idata, method="tail"),
                az.mcse(idata, method="mean"))

    fast, slow, _ = timed(a.repeat, diagnostics)
    print(f"arviz_diagnostics_seconds={fast:.4f}")
    print(f"arviz_diagnostics_seconds_slowest={slow:.4f}")
    print(f"peak_rss_mib_after_arviz_diagnostics={peak_mib():.1f}")

    # emcee's layout: (steps, walkers, ndim); quiet=True: no warning for
    # chains shorter than 50 τ (they are not).
    steps = np.ascontiguousarray(x.T)[:, :, None]
    fast, slow, tau = timed(a.repeat, lambda: emcee.autocorr.integrated_time(steps, quiet=True))
    print(f"emcee_tau_seconds={fast:.4f}")
    print(f"emcee_tau_seconds_slowest={slow:.4f}")
    print(f"peak_rss_mib_after_emcee_tau={peak_mib():.1f}")

    row = table.iloc[0]
    print(f"rhat={row['r_hat']}")
    print(f"ess_bulk={row['ess_bulk']}")
    print(f"tau={float(tau[0]):.3f}")
    print(f"versions=arviz {az.__version__}, emcee {emcee.__version__}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
