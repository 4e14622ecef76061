"""sampo's side of a Python model, run inside the interpreter sampo embeds.

Finds the user's environment, imports the model's file once per process,
calls its `setup(config)` once per state, and formats exceptions with their
traceback for sampo's messages. Rust calls the functions below.
"""

import importlib.util
import json
import os
import site
import sys
import traceback

_modules = {}


def environment(prefix):
    """Adds the site-packages of the environment at `prefix` (a venv or a
    conda env: VIRTUAL_ENV, CONDA_PREFIX) to the import path; returns a
    line describing the interpreter and environment, for messages."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if prefix:
        wanted = os.path.join(prefix, "lib", f"python{version}", "site-packages")
        if os.path.isdir(wanted):
            site.addsitedir(wanted)
            exe = os.path.join(prefix, "bin", "python")
            if os.path.exists(exe):
                sys.executable = exe
        else:
            lib = os.path.join(prefix, "lib")
            found = sorted(
                d for d in (os.listdir(lib) if os.path.isdir(lib) else [])
                if d.startswith("python3")
            )
            raise RuntimeError(
                f"the Python environment {prefix} has no lib/python{version}/site-packages"
                + (f" (it has {', '.join(found)})" if found else "")
                + f": sampo embeds Python {version}; use an environment made with "
                f"Python {version}, or rebuild sampo against that environment's Python "
                "(PYO3_PYTHON=/path/to/python cargo build --release)"
            )
    return f"Python {sys.version.split()[0]} ({sys.prefix}), environment {prefix or 'none'}"


def interpreter(executable, prefix, base_prefix, paths):
    """Adds the packages of the interpreter `executable` (`[python]
    executable`), whose import path is `paths`: its site-packages (with
    their .pth files) and the other folders outside its standard library,
    ahead of the embedded interpreter's own site-packages, so that the
    environment's versions of a package are the ones imported."""
    before = list(sys.path)
    for p in paths:
        if p in sys.path or not os.path.isdir(p):
            continue
        if os.path.basename(p.rstrip(os.sep)) in ("site-packages", "dist-packages"):
            site.addsitedir(p)
        elif not (p + os.sep).startswith(os.path.join(base_prefix, "")):
            sys.path.append(p)
    added = [p for p in sys.path if p not in before]
    rest = [p for p in sys.path if p in before]
    first_site = next(
        (i for i, p in enumerate(rest) if os.path.basename(p) in ("site-packages", "dist-packages")),
        len(rest),
    )
    sys.path[:] = rest[:first_site] + added + rest[first_site:]
    sys.executable = executable
    return f"Python {sys.version.split()[0]} ({sys.prefix}), environment {prefix}"


def load(path, function, config_json, state):
    """The model's function and the object its `setup(config)` returned
    (None without a setup), importing the file once per process."""
    module = _modules.get(path)
    if module is None:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no Python file {path}")
        name = os.path.splitext(os.path.basename(path))[0]
        folder = os.path.dirname(path)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        _modules[path] = module
    f = getattr(module, function, None)
    if f is None or not callable(f):
        defined = sorted(
            k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
        )
        raise AttributeError(
            f"{path} has no function `{function}`"
            + (f" (it defines {', '.join(defined)})" if defined else "")
        )
    context = None
    setup = getattr(module, "setup", None)
    if callable(setup):
        config = json.loads(config_json)
        context = setup(config)
    return f, context


def output_names(path, context):
    """The names a forward model gives its outputs (its module's
    `output_names(context)`, or `output_names()` without a setup), or None."""
    f = getattr(_modules[path], "output_names", None)
    if not callable(f):
        return None
    names = f() if context is None else f(context)
    return [str(n) for n in names]


def describe(error, tb):
    """An exception as Python prints it: traceback, type and message."""
    return "".join(traceback.format_exception(type(error), error, tb)).rstrip()
