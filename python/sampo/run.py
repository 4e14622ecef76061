"""A sampo output file as a `Run`: its facts, its draws and its stored tables.

Every method opens the file, reads what it needs and closes it again, so a
`Run` of a file that sampo is still writing sees the rows flushed since the
last call, and never holds the file open.
"""

import json
import sys
import warnings

from . import _hdf5
from . import results

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on older interpreters only
    import tomli as tomllib

# Result groups that say which kind of run wrote a file without a resolved spec.
KIND_GROUPS = ("smc", "batch", "paths")


class IncompleteRunWarning(UserWarning):
    """The file is not a completed run: running, paused, failed or killed."""


class NotInThisRun(LookupError):
    """The file holds no such results: its kind does not write them (``smc()`` of
    an ensemble run), or the run has not written them yet (``summary()`` of a
    running file)."""


def open(path, warn=True):  # noqa: A001 - sampo.open mirrors h5py.File / io.open
    """Opens a sampo output file (``.h5``, or a ``.partial`` being written).

    Warns with `IncompleteRunWarning` when the run is not complete (``warn=False``
    silences it); `Run.complete` says the same.
    """
    run = Run(path)
    if warn and not run.complete:
        warnings.warn(
            f"{path}: status {run.status!r}: the run is not complete; "
            "only the rows written so far are read",
            IncompleteRunWarning,
            stacklevel=2,
        )
    return run


class Run:
    """One sampo output file. Create it with `sampo.open`."""

    def __init__(self, path):
        self.path = str(path)
        # The root attributes as they were at open; `status` reads the file again.
        self.attrs = _hdf5.read(self.path, _hdf5.attrs)
        self.spec_text = self.attrs.get("spec")
        resolved = self.attrs.get("resolved_spec")
        self.resolved_spec = json.loads(resolved) if resolved else None

    def __repr__(self):
        return (f"<sampo.Run {self.path!r}: {self.kind}, states {self.states}, "
                f"status {self.status!r}>")

    # The layout is read again each time: a running file gains groups as it goes.
    @property
    def _groups(self):
        return _hdf5.read(self.path, lambda f: set(f.keys()))

    @property
    def _state_groups(self):
        return _hdf5.read(self.path, _draws_groups)

    # --- the run's facts ---------------------------------------------------------

    @property
    def status(self):
        """``running``, ``complete``, ``paused`` or ``failed: …`` as the file says now."""
        return _hdf5.read(self.path, lambda f: _hdf5.text(f.attrs.get("status", "")))

    @property
    def complete(self):
        """Whether the run finished: its status is ``complete``."""
        return self.status == "complete"

    @property
    def kind(self):
        """The sampler kind: ``ensemble``, ``chains``, ``smc``, ``batch`` or ``paths``."""
        if self.resolved_spec and isinstance(self.resolved_spec.get("sampler"), dict):
            (kind,) = self.resolved_spec["sampler"].keys()
            return kind
        groups = self._groups
        for kind in KIND_GROUPS:
            if kind in groups:
                return kind
        draws = self._state_groups
        if not draws:
            return None
        first = next(iter(draws.values()))
        return _hdf5.read(self.path, lambda f: _hdf5.attr_value(f[first].attrs.get("kind")))

    @property
    def has_transc(self):
        """Whether the file holds a trans-conceptual stage (``/transc``)."""
        return "transc" in self._groups

    @property
    def states(self):
        """The states' names, in the spec's order (alphabetical in a file without
        a resolved spec)."""
        if self.resolved_spec and self.resolved_spec.get("states"):
            return [s["name"] for s in self.resolved_spec["states"]]
        return _hdf5.read(self.path, _state_names)

    @property
    def spec(self):
        """The spec as the run read it (the TOML text, parsed into a dict)."""
        return tomllib.loads(self.spec_text) if self.spec_text else None

    # --- draws of the ensemble and chains kinds -----------------------------------

    def params(self, state):
        """The parameter names of a state."""
        group = self._draws_group(state)
        return _hdf5.read(self.path, lambda f: list(_hdf5.attr_value(f[group].attrs["params"])))

    def state_attrs(self, state):
        """The attributes of a state's group of draws (``burn_rows``, ``thin``, …)."""
        group = self._draws_group(state)
        return _hdf5.read(self.path, lambda f: _hdf5.attrs(f[group]))

    def chain(self, state, discard="burn", thin=1, flat=False, replicate=0):
        """A state's stored positions with emcee's axes: (rows, walkers, params).

        As emcee's ``get_chain(discard=…, thin=…, flat=…)``. ``discard="burn"``
        leaves out the burn-in the file records (``burn_rows``); an int leaves
        out that many stored rows. For chains, axis 1 is the chain. Only the
        complete rows of an unfinished file are read. ``replicate`` picks one
        replicate of an ensemble run with several.
        """
        return self._rows(state, "chain", discard, thin, flat, replicate)

    def log_prob(self, state, discard="burn", thin=1, flat=False, replicate=0):
        """A state's stored log-probabilities, (rows, walkers), as `chain` selects them."""
        return self._rows(state, "log_prob", discard, thin, flat, replicate)

    def acceptance_fraction(self, state, replicate=0):
        """Per walker (or chain): accepted moves / stored iterations, as emcee's."""

        def read(f):
            g = f[self._draws_group(state)]
            accepted = g["accepted"][...]
            if accepted.ndim == 2:
                accepted = accepted[replicate]
            return accepted / max(int(g.attrs["iteration"]), 1)

        return _hdf5.read(self.path, read)

    def to_arviz(self, states=None, discard="burn", thin=1, replicate=0):
        """The draws as ``arviz.InferenceData`` (see `sampo.inference.to_arviz`):
        the ensemble and chains kinds' stored rows, or an smc state's equally
        weighted posterior draw.

        ``states`` a name: that state's InferenceData. ``None`` with one state
        in the run: its InferenceData. A list, or ``None`` with several states:
        a dict from state name to InferenceData (their walkers and draws differ).
        """
        from .inference import to_arviz

        if isinstance(states, str):
            return to_arviz(self, states, discard, thin, replicate)
        names = self.states if states is None else list(states)
        if states is None and len(names) == 1:
            return to_arviz(self, names[0], discard, thin, replicate)
        return {s: to_arviz(self, s, discard, thin, replicate) for s in names}

    # --- stored tables -------------------------------------------------------------

    def summary(self, state=None, replicate=0):
        """The stored ``/summary`` table as a pandas DataFrame.

        ``state=None``: every row, with ``state``, ``replicate`` and ``param``
        columns. A state's name: its rows of one replicate, indexed by ``param``
        (as ``arviz.summary`` indexes its table).
        """
        import pandas as pd

        def read(f):
            if "summary" not in f:
                raise NotInThisRun(
                    f"{self.path} has no /summary (kind {self.kind}, status {self.status}): "
                    "it is written at the end of an ensemble or chains run; "
                    "`sampo summary FILE` recomputes it from an unfinished file"
                )
            t = f["summary"]
            columns = ["state", "replicate", "param"] + list(_hdf5.attr_value(t.attrs["columns"]))
            return {c: _hdf5.dataset(t[c]) for c in columns}

        table = pd.DataFrame(_hdf5.read(self.path, read))
        # The table is laid out when the run starts; a row's state is filled in
        # when the row is written.
        table = table[table["state"] != ""].reset_index(drop=True)
        if table.empty:
            raise NotInThisRun(
                f"{self.path}: /summary has no rows yet (status {self.status}): "
                "it is written when the run completes; "
                "`sampo summary FILE` recomputes it from an unfinished file"
            )
        if state is None:
            return table
        self._check_state(state)
        rows = table[(table["state"] == state) & (table["replicate"] == replicate)]
        return rows.drop(columns=["state", "replicate"]).set_index("param")

    def transc(self):
        """The trans-conceptual stage's results (``/transc``) as a `results.Transc`."""
        if not self.has_transc:
            raise NotInThisRun(f"{self.path} has no trans-conceptual stage (/transc)")
        return _hdf5.read(self.path, results.Transc.read)

    def smc(self, state=None):
        """The smc kind's results: a state's `results.SmcState`, or a dict of all."""
        return self._per_state("smc", results.SmcState.read, state)

    def batch(self, state=None):
        """The batch kind's tables: a state's `results.BatchState`, or a dict of all."""
        return self._per_state("batch", results.BatchState.read, state)

    def paths(self, state=None, paths=False):
        """The paths kind's statistics: a state's `results.PathsState`, or a dict of all.

        ``paths=True`` also reads the stored paths (``record = "paths"`` or
        ``"both"``), which can be large.
        """
        sampler = (self.resolved_spec or {}).get("sampler", {}).get("paths", {})
        levels = sampler.get("quantiles")
        return self._per_state(
            "paths", lambda g: results.PathsState.read(g, paths, levels), state
        )

    # --- helpers ------------------------------------------------------------------------

    def _check_state(self, state):
        if state not in self.states:
            raise KeyError(f"no state {state!r} in {self.path}; states: {self.states}")

    def _draws_group(self, state):
        self._check_state(state)
        group = self._state_groups.get(state)
        if group is None:
            raise NotInThisRun(
                f"{self.path}: state {state!r} has no stored draws (kind {self.kind}); "
                "chain, log_prob and to_arviz read the ensemble and chains kinds (to_arviz smc too)"
            )
        return group

    def _rows(self, state, name, discard, thin, flat, replicate):
        group = self._draws_group(state)
        if thin < 1:
            raise ValueError(f"thin must be at least 1, not {thin}")

        def read(f):
            g = f[group]
            rows = min(int(g.attrs["iteration"]), g[name].shape[0])
            start = int(g.attrs["burn_rows"]) if discard == "burn" else int(discard)
            if start < 0:
                raise ValueError(f"discard must be 'burn' or at least 0, not {discard}")
            # emcee's get_value: rows discard + thin - 1, then every thin-th.
            picked = slice(start + thin - 1, rows, thin)
            if "replicates" in g.attrs:
                return g[name][picked, replicate]
            if replicate != 0:
                raise IndexError(f"{self.path}: state {state!r} has one replicate")
            return g[name][picked]

        values = _hdf5.read(self.path, read)
        if flat:
            values = values.reshape((-1,) + values.shape[2:])
        return values

    def _per_state(self, kind, reader, state):
        if kind not in self._groups:
            raise NotInThisRun(
                f"{self.path} holds no {kind} results (/{kind}); its kind is {self.kind}"
            )
        if state is not None:
            self._check_state(state)
            return _hdf5.read(self.path, lambda f: reader(f[kind][state]))
        return _hdf5.read(
            self.path,
            lambda f: {s: reader(f[kind][s]) for s in self.states if s in f[kind]},
        )


def _state_names(f):
    """The states a file without a resolved spec has groups for."""
    skip = {"smc/state_probabilities"}  # smc's table beside its states
    found = []
    for top in ("states", "replicates") + KIND_GROUPS:
        for name in f.get(top, {}):
            if f"{top}/{name}" not in skip and name not in found:
                found.append(name)
    return found


def _draws_groups(f):
    """Where each state's draws are: ``states/<state>`` or ``replicates/<state>``."""
    draws = {}
    for top in ("states", "replicates"):
        if top in f:
            for name in f[top]:
                draws[name] = f"{top}/{name}"
    return draws
