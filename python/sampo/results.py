"""The results of the smc, batch and paths kinds and of the trans-conceptual stage.

Each reader takes the HDF5 group sampo wrote and returns its numbers as numpy
arrays (names as lists of str, attributes as a dict), with ``table`` methods
that put the main ones in a pandas DataFrame. Every dataset of the group is
kept in ``data`` under its stored name, so nothing the file holds is lost.
"""

from dataclasses import dataclass, field

import numpy as np

from . import _hdf5


def _data(group, skip=()):
    return {
        k: _hdf5.dataset(v)
        for k, v in group.items()
        if k not in skip and hasattr(v, "dtype")
    }


@dataclass
class Transc:
    """``/transc``: the trans-conceptual stage over the run's states.

    ``probability`` and ``probability_err`` are the posterior state
    probabilities and their errors; ``log_evidence`` and ``log_evidence_err``
    are log Z_k − log Z_0 with errors; ``state`` (walkers × stored steps) is each
    walker's state chain after burn-in; ``pseudo_prior`` holds each state's
    fitted pseudo-prior (``weights``, ``means``, ``covs`` and its attributes).
    """

    states: list
    method: str
    probability: np.ndarray
    probability_err: np.ndarray
    log_evidence: np.ndarray
    log_evidence_err: np.ndarray
    state: np.ndarray
    pseudo_prior: dict = field(repr=False)
    attrs: dict = field(repr=False)
    data: dict = field(repr=False)

    @classmethod
    def read(cls, f):
        g = f["transc"]
        data = _data(g)
        pseudo = {}
        if "pseudo_prior" in g:
            for name, q in g["pseudo_prior"].items():
                pseudo[name] = dict(_data(q), attrs=_hdf5.attrs(q))
        attrs = _hdf5.attrs(g)
        return cls(
            states=list(attrs["states"]),
            method=attrs.get("method"),
            probability=data.get("probability"),
            probability_err=data.get("probability_err"),
            log_evidence=data.get("log_evidence"),
            log_evidence_err=data.get("log_evidence_err"),
            state=data.get("state"),
            pseudo_prior=pseudo,
            attrs=attrs,
            data=data,
        )

    def table(self):
        """A DataFrame indexed by state: probability, its error, log evidence, its error."""
        import pandas as pd

        return pd.DataFrame(
            {
                "probability": self.probability,
                "probability_err": self.probability_err,
                "log_evidence": self.log_evidence,
                "log_evidence_err": self.log_evidence_err,
            },
            index=pd.Index(self.states, name="state"),
        )


@dataclass
class SmcState:
    """``/smc/<state>``: the evidence and the weighted particles of one state.

    ``log_evidence`` ± ``log_evidence_err`` is the mean of the groups'
    ``group_log_z`` and its standard error. ``particles`` (N × params) with
    ``log_weights`` (normalised: ``weights`` sum to 1) is the weighted
    posterior sample; ``posterior`` an equally weighted draw from it. With
    several states, ``probability`` ± ``probability_err`` is the state's
    posterior probability at equal prior odds (else None).
    """

    state: str
    params: list
    log_evidence: float
    log_evidence_err: float
    group_log_z: np.ndarray
    particles: np.ndarray
    log_weights: np.ndarray
    posterior: np.ndarray
    probability: float
    probability_err: float
    attrs: dict = field(repr=False)
    data: dict = field(repr=False)

    @classmethod
    def read(cls, g):
        data = _data(g)
        attrs = _hdf5.attrs(g)
        state = attrs.get("state", g.name.split("/")[-1])
        probability = probability_err = None
        table = g.parent.get("state_probabilities")
        if table is not None:
            names = _hdf5.dataset(table["state"])
            if state in names:
                k = names.index(state)
                probability = float(table["probability"][k])
                probability_err = float(table["error"][k])
        return cls(
            state=state,
            params=list(attrs.get("params", [])),
            log_evidence=attrs.get("log_evidence"),
            log_evidence_err=attrs.get("log_evidence_err"),
            group_log_z=data.get("group_log_z"),
            particles=data.get("particles"),
            log_weights=data.get("log_weights"),
            posterior=data.get("posterior"),
            probability=probability,
            probability_err=probability_err,
            attrs=attrs,
            data=data,
        )

    @property
    def weights(self):
        """The particles' normalised weights, exp(log_weights)."""
        return np.exp(self.log_weights)

    def table(self):
        """The weighted particles as a DataFrame: a column per parameter, then
        ``log_weight``, ``weight``, ``log_likelihood``, ``log_prior``, ``iteration``
        and ``group``."""
        import pandas as pd

        columns = {p: self.particles[:, k] for k, p in enumerate(self.params)}
        columns["log_weight"] = self.log_weights
        columns["weight"] = self.weights
        for name in ("log_likelihood", "log_prior", "iteration", "group"):
            columns[name] = self.data[name]
        return pd.DataFrame(columns)


@dataclass
class BatchState:
    """``/batch/<state>``: every item's inputs, outputs and status.

    ``inputs`` (items × params) and ``outputs`` (items × outputs) are labelled by
    ``param_names`` and ``output_names``; ``status`` is 0 for a done item, the
    model's status where it failed and −1 where it has not run yet (so an
    unfinished file says exactly which rows hold results). ``statistics``
    (``statistic_names`` × outputs) is written at the end of the run.
    """

    state: str
    param_names: list
    output_names: list
    inputs: np.ndarray
    outputs: np.ndarray
    status: np.ndarray
    messages: list
    statistic_names: list
    statistics: np.ndarray
    attrs: dict = field(repr=False)
    data: dict = field(repr=False)

    @classmethod
    def read(cls, g):
        data = _data(g)
        attrs = _hdf5.attrs(g)
        return cls(
            state=attrs.get("state", g.name.split("/")[-1]),
            param_names=list(attrs.get("params", [])),
            output_names=list(attrs.get("outputs", [])),
            inputs=data.get("inputs"),
            outputs=data.get("outputs"),
            status=data.get("status"),
            messages=data.get("messages"),
            statistic_names=list(attrs.get("statistics", [])),
            statistics=data.get("statistics"),
            attrs=attrs,
            data=data,
        )

    @property
    def done(self):
        """Which items ran and succeeded (status 0)."""
        return self.status == 0

    def table(self):
        """Every item as a DataFrame row: the inputs, the outputs, ``status`` and ``message``."""
        import pandas as pd

        columns = {p: self.inputs[:, k] for k, p in enumerate(self.param_names)}
        columns.update({o: self.outputs[:, k] for k, o in enumerate(self.output_names)})
        columns["status"] = self.status
        columns["message"] = self.messages
        return pd.DataFrame(columns)

    def statistics_table(self):
        """The statistics as a DataFrame: a row per statistic, a column per output."""
        import pandas as pd

        if self.statistics is None:
            raise LookupError(f"state {self.state!r}: no statistics yet (written at the end)")
        return pd.DataFrame(
            self.statistics,
            index=pd.Index(self.statistic_names, name="statistic"),
            columns=self.output_names,
        )


@dataclass
class PathsState:
    """``/paths/<state>``: per-time statistics of one state's paths, with errors.

    At each recorded step (``times``): ``mean``, ``sd`` and ``se`` (the standard
    error of the mean). Where they apply: ``occupation`` ± ``occupation_se``
    (recorded steps × ``labels``), ``quantiles`` at ``quantile_levels`` (with
    ``quantiles_se`` for unbounded spaces), and the ``hitting``, ``absorption``
    and ``time_statistics`` datasets in ``data``. ``paths`` is the stored paths
    (paths × recorded steps) when they were recorded and asked for, else None.
    """

    state: str
    process: str
    times: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    se: np.ndarray
    labels: list
    occupation: np.ndarray
    occupation_se: np.ndarray
    quantile_levels: list
    quantiles: np.ndarray
    paths: np.ndarray
    attrs: dict = field(repr=False)
    data: dict = field(repr=False)

    @classmethod
    def read(cls, g, paths=False, levels=None):
        skip = () if paths else ("states", "path_times")
        data = _data(g, skip)
        attrs = _hdf5.attrs(g)
        stats = data.get("statistics")
        column = (lambda k: stats[:, k]) if stats is not None else (lambda k: None)
        # Discrete spaces record the levels in the group; else the spec has them.
        quantiles = attrs.get("quantiles", levels)
        return cls(
            state=attrs.get("state", g.name.split("/")[-1]),
            process=attrs.get("process"),
            times=data.get("times"),
            mean=column(0),
            sd=column(1),
            se=column(2),
            labels=list(attrs["labels"]) if "labels" in attrs else None,
            occupation=data.get("occupation"),
            occupation_se=data.get("occupation_se"),
            quantile_levels=list(quantiles) if quantiles is not None else None,
            quantiles=data.get("quantiles"),
            paths=data.get("states"),
            attrs=attrs,
            data=data,
        )

    def table(self):
        """A DataFrame indexed by time: ``mean``, ``sd``, ``se`` and the quantiles."""
        import pandas as pd

        columns = {"mean": self.mean, "sd": self.sd, "se": self.se}
        if self.quantiles is not None:
            levels = self.quantile_levels or range(self.quantiles.shape[1])
            for k, q in enumerate(levels):
                columns[f"q{q:g}"] = self.quantiles[:, k]
        return pd.DataFrame(columns, index=pd.Index(self.times, name="time"))
