"""Names shared by the graph-tool side (properties, extraction) and the pure-pandas side (signature
keys, temporal summary); importing this module loads nothing."""

PROPERTIES = ("eigenvector", "strength", "pagerank", "katz", "clustering")
AGGREGATORS = ("mean", "median", "std", "skew", "kurtosis")
META_COLUMNS = ("run_id", "snapshot", "epoch")  # the columns of a signature table that are not signatures
