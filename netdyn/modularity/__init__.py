"""Layer-wise modularity of representations (methods.md §3, Lu et al. ECCV 2022): how cleanly each
layer's outputs on N test images separate the classes, read as the modularity Q of a cosine kNN graph
with the true classes as communities.

    q = knn_modularity(features, labels, k=3)      # (N, D) array/tensor + (N,) ints -> Q   (score)
    out = layer_outputs(model, images)             # {layer: (N, C·H·W)}, one forward pass  (readout)
    curve = modularity_curve(model, images, labels)  # layer_index, layer_name, q_mean, q_std (curve)
    names = candidate_layers(curve)                # plateau / degradation rule              (plateau)

Also: ``knn_graph`` / ``cosine_topk`` (the chunked kNN graph, knn), ``edge_modularity`` (Q of any
weighted edge list, score), ``default_layers`` (readout), ``plateau_runs`` / ``plateau_layers``
(plateau); the workflow stage's tables and feature set (stage; one group's table: group); the pruning
check, which retrains a net without its plateau layers beside a control (pruning: ``pruning_plan`` /
``run_pruning``; its tables: pruning_stats). Each module documents its decisions; bad input raises
``ModularityInputError`` naming the key.

Names are resolved lazily (PEP 562): ``netdyn.modularity.plateau`` needs neither torch nor graph-tool.
"""

from __future__ import annotations

from ..exports import lazy_exports

_EXPORTS = {
    "errors": ("ModularityInputError",),
    "knn": ("KnnGraph", "cosine_topk", "knn_graph", "symmetrise"),
    "score": ("knn_modularity", "edge_modularity", "graph_modularity"),
    "readout": ("layer_outputs", "default_layers"),
    "curve": ("modularity_curve", "CURVE_COLUMNS"),
    "plateau": ("plateau_runs", "plateau_layers", "candidate_layers"),
    "run": ("run_curves", "RUN_CURVE_COLUMNS", "run_test_data", "snapshot_indices"),
    "stage": ("early_window_features", "plateau_table", "snapshots_for", "wants_every_epoch", "TABLE_COLUMNS",
              "PLATEAU_COLUMNS"),
    "group": ("group_table",),
    "pruning": ("pruning_plan", "run_pruning", "control_layers", "droppable_layers", "choose_setting", "n_params"),
    "pruning_stats": ("pruning_table", "pruning_summary", "mean_interval", "PRUNING_COLUMNS", "SUMMARY_COLUMNS"),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
