"""Read sampo's output files in one line.

    import sampo
    run = sampo.open("quickstart.h5")
    run.summary("gauss")                 # the stored /summary table (pandas)
    x = run.chain("gauss")               # (draws, walkers, params) after burn-in
    idata = run.to_arviz("gauss")        # arviz.InferenceData

numpy and h5py are required; pandas (tables) and ArviZ (to_arviz) are
imported only by the methods that use them.
"""

from .results import BatchState, PathsState, SmcState, Transc
from .run import IncompleteRunWarning, NotInThisRun, Run, open
from .streams import path_generator

__all__ = [
    "open",
    "Run",
    "IncompleteRunWarning",
    "NotInThisRun",
    "Transc",
    "SmcState",
    "BatchState",
    "PathsState",
    "path_generator",
]
__version__ = "0.1.0"
