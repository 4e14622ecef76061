"""The run spec's JSON Schema (docs/sampo.schema.json) read by a validator
that is not sampo's: jsonschema, as an editor or a CI job would use it.

The committed schema is a valid 2020-12 schema and is what `sampo schema`
prints; every example spec in configs/ and every starter `sampo new` writes
(for every kind the schema lists) validates; and specs that `sampo check`
refuses — an unknown key, a wrong type, a value out of range, a missing
required key, an unknown kind — fail validation at the offending key.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
SAMPO_BIN = Path(os.environ.get("SAMPO_BIN", REPO / "target" / "release" / "sampo"))
SCHEMA_FILE = REPO / "docs" / "sampo.schema.json"

pytestmark = pytest.mark.skipif(
    not SAMPO_BIN.exists(), reason="sampo is not built (cargo build --release)"
)


def sampo(*args, stdin=None):
    return subprocess.run(
        [str(SAMPO_BIN), *args], capture_output=True, text=True, input=stdin
    )


def schema():
    return json.loads(SCHEMA_FILE.read_text())


def validator():
    return Draft202012Validator(schema())


def errors(spec):
    """(path, validator keyword) of every error, the path as a tuple."""
    return {(tuple(e.absolute_path), e.validator) for e in validator().iter_errors(spec)}


def kinds():
    """The kinds of work, from the schema's `[sampler] kind`."""
    return schema()["properties"]["sampler"]["properties"]["kind"]["enum"]


def test_the_committed_schema_is_a_valid_2020_12_schema_and_current():
    s = schema()
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(s)
    out = sampo("schema")
    assert out.returncode == 0, out.stderr
    assert out.stdout == SCHEMA_FILE.read_text(), (
        "docs/sampo.schema.json is stale: regenerate it with `sampo schema`"
    )


CONFIGS = sorted((REPO / "configs").glob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_example_spec_validates(path):
    spec = tomllib.loads(path.read_text())
    problems = sorted(errors(spec))
    assert not problems, f"{path.name}: {problems}"


def test_the_kinds_are_those_sampo_new_accepts():
    # An unknown kind's error lists the kinds the binary knows.
    out = sampo("new", "no-such-kind")
    assert out.returncode == 2
    listed = out.stderr.split("expected one of", 1)[1].splitlines()[0]
    assert [k.strip() for k in listed.split(",")] == kinds()
    assert len(kinds()) >= 5


def starters():
    for kind in kinds():
        for states in ("1", "3"):
            yield (kind, "--states", states)
    yield ("chains", "--stage", "transc")
    yield ("ensemble", "--stage", "transc")


@pytest.mark.parametrize("args", list(starters()), ids=" ".join)
def test_every_starter_spec_validates(args):
    out = sampo("new", *args)
    assert out.returncode == 0, out.stderr
    spec = tomllib.loads(out.stdout)
    assert spec["sampler"]["kind"] == args[0]
    if "transc" in args:
        assert "transc" in spec and len(spec["states"]) >= 2
    elif args[1] == "--states":
        assert len(spec["states"]) == int(args[2])
    problems = sorted(errors(spec))
    assert not problems, f"sampo new {' '.join(args)}: {problems}"


def toml_text(spec):
    """A small TOML writer for the specs below (tables, arrays of tables,
    inline tables, strings, numbers, booleans, arrays)."""

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        raise TypeError(v)

    lines = []
    for name, table in spec.items():
        rows = table if isinstance(table, list) else [table]
        for row in rows:
            lines.append(f"[[{name}]]" if isinstance(table, list) else f"[{name}]")
            lines.extend(f"{k} = {value(v)}" for k, v in row.items())
    return "\n".join(lines) + "\n"


def base():
    out = sampo("new", "ensemble")
    assert out.returncode == 0, out.stderr
    return tomllib.loads(out.stdout)


def mutate(path, edit):
    """The starter ensemble spec with `edit(table, key)` applied at `path`."""
    spec = base()
    table = spec
    for key in path[:-1]:
        table = table[key]
    edit(table, path[-1])
    return spec


def put(v):
    def edit(table, key):
        table[key] = v

    return edit


def drop(table, key):
    del table[key]


NEGATIVE = [
    # (what, path edited, edit, error path, keyword)
    ("an unknown key", ("run", "bogus"), put(1), ("run",), "additionalProperties"),
    ("an unknown state key", ("states", 0, "bogus"), put(1), ("states", 0), "additionalProperties"),
    ("a wrong type", ("sampler", "walkers"), put("many"), ("sampler", "walkers"), "type"),
    ("a value out of range", ("sampler", "walkers"), put(-4), ("sampler", "walkers"), "minimum"),
    ("a missing required key", ("states", 0, "model"), drop, ("states", 0), "required"),
    ("an unknown kind", ("sampler", "kind"), put("mcmc"), ("sampler", "kind"), "enum"),
]


@pytest.mark.parametrize("case", NEGATIVE, ids=[c[0] for c in NEGATIVE])
def test_a_bad_spec_fails_validation_at_the_offending_key(case, tmp_path):
    what, path, edit, error_path, keyword = case
    assert not errors(base()), "the starter itself validates"
    spec = mutate(path, edit)
    found = errors(spec)
    assert (error_path, keyword) in found, f"{what}: {sorted(found)}"
    # sampo refuses it too: the schema and the binary agree.
    out = sampo("check", "-", stdin=toml_text(spec))
    assert out.returncode == 2, f"{what}: sampo check accepted it\n{toml_text(spec)}"
