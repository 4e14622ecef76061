"""A state's draws as an ``arviz.InferenceData`` (ArviZ is imported only here).

The walkers of an ensemble (or the independent chains of the chains kind) are
ArviZ's ``chain`` dimension and the stored rows after the discard its ``draw``
dimension, so ``arviz.summary`` on the result takes them as sampo's ``/summary``
does. An ensemble's walkers are not independent chains: R-hat and ESS over them
are indicative, which the ``independent_chains`` attribute records.
"""

import numpy as np


def to_arviz(run, state, discard="burn", thin=1, replicate=0):
    """``posterior``: a variable per parameter, dims (chain, draw).
    ``sample_stats``: ``lp`` (log-probability, dims (chain, draw)) and
    ``acceptance_rate`` (each walker's or chain's accepted moves / stored
    iterations over the whole run, dims (chain,): the file keeps counts per
    walker, not per draw). Attributes name the file, state, kind, discard and
    thin, and say whether the chains are independent.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # ArviZ 0.2x announces 1.0
        import arviz as az
    import xarray as xr

    info = run.state_attrs(state)
    params = list(info["params"])
    chain = run.chain(state, discard, thin, replicate=replicate)  # (draws, chains, params)
    lp = run.log_prob(state, discard, thin, replicate=replicate)
    start = int(info["burn_rows"]) if discard == "burn" else int(discard)
    rows = np.arange(start + thin - 1, start + thin - 1 + thin * chain.shape[0], thin)
    coords = {"chain": np.arange(chain.shape[1]), "draw": rows}
    independent = bool(info.get("independent_chains", info.get("kind") == "chains"))
    attrs = {
        "sampo_file": run.path,
        "sampo_state": state,
        "sampo_kind": str(info.get("kind", run.kind)),
        "sampo_status": run.status,
        "sampo_replicate": int(replicate),
        "discard_rows": int(start),
        "thin": int(thin),
        # netCDF attributes cannot be booleans.
        "independent_chains": int(independent),
        "chain_is": "chain" if independent else "walker of one ensemble (not independent)",
    }
    posterior = xr.Dataset(
        {p: (("chain", "draw"), chain[:, :, k].T) for k, p in enumerate(params)},
        coords=coords,
        attrs=attrs,
    )
    sample_stats = xr.Dataset(
        {
            "lp": (("chain", "draw"), lp.T),
            "acceptance_rate": (("chain",), run.acceptance_fraction(state, replicate)),
        },
        coords=coords,
        attrs=attrs,
    )
    return az.InferenceData(posterior=posterior, sample_stats=sample_stats)
