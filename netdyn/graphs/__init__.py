"""Temporal graph summaries of training (methods.md §1): one weighted graph per snapshot, node
properties, a size-independent "graph signature", and the early-epoch summary a predictor reads.

    g = rolled_graph(model)                 # any traceable nn.Module -> graph_tool.Graph  (rolled, walk)
    props = node_properties(g)              # DataFrame, one row per node              (properties)
    sig = signature(props)                  # {"features.0.eigenvector.mean": ...}     (signatures)
    sigs = snapshot_signatures(traj)        # one row per snapshot of a Trajectory     (extract)
    X = temporal_summary(sigs, window=3)    # one row per run: early epochs + changes  (summary)
    extract_run(run_dir, max_epoch)         # checks a run's trajectory, then snapshot_signatures
    extract_runs(run_dirs, max_epoch)       # the same for a list of runs, concatenated

Also: ``rolled_graph_from_trajectory``, ``rolled_edge_arrays`` (for other graph libraries),
``perron_vector``, ``unrolled_graph`` and ``graph_sizes`` (unrolled). Each module documents the decisions
it implements. On a shared, oversubscribed CPU set ``OMP_WAIT_POLICY=PASSIVE`` before graph_tool is
imported: spinning OpenMP barriers then cost more than the work at small widths (measured: up to 30×
slower node_properties).

Names are resolved lazily (PEP 562): ``from netdyn.graphs import temporal_summary`` imports only pandas
and numpy, so the prediction stage runs where graph-tool and torch are not installed.
"""

from __future__ import annotations

from ..exports import lazy_exports

_EXPORTS = {
    "columns": ("PROPERTIES", "AGGREGATORS", "META_COLUMNS"),
    "summary": ("temporal_summary",),
    "signatures": ("signature",),
    "properties": ("KATZ_FRACTION", "node_properties", "perron_vector"),
    "rolled": ("rolled_graph", "rolled_graph_from_trajectory", "rolled_edge_arrays"),
    "steps": ("UnsupportedOperation",),
    "unrolled": ("unrolled_graph", "graph_sizes"),
    "extract": ("snapshot_signatures", "extract_run", "extract_runs"),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
