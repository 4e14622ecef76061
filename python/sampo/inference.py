"""A state's draws as an ``arviz.InferenceData`` (ArviZ is imported only here).

The walkers of an ensemble (or the independent chains of the chains kind) are
ArviZ's ``chain`` dimension and the stored rows after the discard its ``draw``
dimension, so ``arviz.summary`` on the result takes them as sampo's ``/summary``
does. An ensemble's walkers are not independent chains: R-hat and ESS over them
are indicative, which the ``independent_chains`` attribute records.

An smc state gives its final population as ArviZ users expect a posterior:
equally weighted draws (the file's ``posterior`` draw from the weighted
particles at β = 1), as one chain; the weighted particles stay in
``run.smc(state)``.
"""

import numpy as np


def _arviz():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # ArviZ 0.2x announces 1.0
        import arviz as az
    import xarray as xr

    return az, xr


def to_arviz(run, state, discard="burn", thin=1, replicate=0):
    """``posterior``: a variable per parameter, dims (chain, draw).
    ``sample_stats``: ``lp`` (log-probability, dims (chain, draw)) and
    ``acceptance_rate`` (each walker's or chain's accepted moves / stored
    iterations over the whole run, dims (chain,): the file keeps counts per
    walker, not per draw). Attributes name the file, state, kind, discard and
    thin, and say whether the chains are independent.
    """
    az, xr = _arviz()
    if run.kind == "smc":
        return _smc_to_arviz(az, xr, run, state, discard, thin, replicate)
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


def _smc_to_arviz(az, xr, run, state, discard, thin, replicate):
    """An smc state: ``posterior``, a variable per parameter with dims
    (chain, draw), one chain of the ``total`` equally weighted draws the file
    holds (every ``thin``-th of them); ``sample_stats``: ``log_evidence`` and
    ``log_evidence_err``, dims (chain,). Attributes as for the other kinds,
    plus ``log_evidence`` and ``log_evidence_err``. The draws are not a Markov
    chain: they are independent given the particles, so there is nothing to
    discard and R-hat over one chain means nothing.
    """
    if discard not in ("burn", 0):
        raise ValueError(
            f"discard={discard!r}: an smc state's draws are not a Markov chain, "
            "there is nothing to discard"
        )
    if thin < 1:
        raise ValueError(f"thin must be at least 1, not {thin}")
    if replicate != 0:
        raise ValueError(f"replicate={replicate}: an smc file holds one run of each state")
    s = run.smc(state)
    draws = s.posterior[::thin]  # (draws, params)
    coords = {"chain": np.arange(1), "draw": np.arange(0, thin * draws.shape[0], thin)}
    attrs = {
        "sampo_file": run.path,
        "sampo_state": state,
        "sampo_kind": "smc",
        "sampo_status": run.status,
        "sampo_replicate": 0,
        "discard_rows": 0,
        "thin": int(thin),
        "independent_chains": 1,
        "chain_is": "the equally weighted draw from the final weighted particles",
        "log_evidence": float(s.log_evidence),
        "log_evidence_err": float(s.log_evidence_err),
    }
    posterior = xr.Dataset(
        {p: (("chain", "draw"), draws[None, :, k]) for k, p in enumerate(s.params)},
        coords=coords,
        attrs=attrs,
    )
    sample_stats = xr.Dataset(
        {
            "log_evidence": (("chain",), np.array([s.log_evidence], dtype=float)),
            "log_evidence_err": (("chain",), np.array([s.log_evidence_err], dtype=float)),
        },
        coords={"chain": coords["chain"]},
        attrs=attrs,
    )
    return az.InferenceData(posterior=posterior, sample_stats=sample_stats)
