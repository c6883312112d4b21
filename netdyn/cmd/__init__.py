"""Correlation mode decomposition (CMD) of training trajectories: post-hoc and online.

    >>> from netdyn import cmd
    >>> res = cmd.posthoc(W, n_modes=10)             # W: (T, N) array/memmap, or a Trajectory
    >>> res.labels, res.a, res.b, res.references     # per-parameter mode and affine fit, (M, T) references
    >>> res.reconstruct(rows=[-1])                   # modelled weights of the last snapshot
    >>> res.relative_error                           # per snapshot
    >>> on = cmd.OnlineCMD.start(W, 10, warmup=5)    # modes fixed after 5 snapshots
    >>> on.update(W[5]); on.a, on.b                  # recursive least squares, no history kept
    >>> epochs, layers = cmd.evaluate_run(run_dir, [1, 2, 5, 10], warmup=5)  # accuracy tables of a run

Peak memory does not grow with N beyond the 20 bytes per parameter of the outputs: see
:mod:`netdyn.cmd.decompose` for the bound.
"""

from .online import OnlineCMD  # noqa: F401
from .decompose import abs_correlation, default_chunk, fit_all, posthoc, posthoc_source  # noqa: F401
from .result import BYTES_PER_PARAMETER, CMDResult  # noqa: F401
from .source import CMDError, Source, as_source, trajectory_layers  # noqa: F401
from ..exports import lazy_exports

# evaluate needs torch and pandas: imported on first use, so `import netdyn.cmd` stays light
_, __getattr__, __dir__ = lazy_exports(__name__, {"evaluate": ("evaluate_run", "RunEvaluator", "online_weights",
                                                               "recompute_bn_stats", "mode_layer_table")})
