"""graph-tool on one OpenMP thread: the suite runs on 2 shared cores, where OpenMP barriers only cost time."""

import graph_tool as gt

gt.openmp_set_num_threads(1)
