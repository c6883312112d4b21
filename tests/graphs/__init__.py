"""Tests of netdyn.graphs, one module per module of the package (a package, so basenames may repeat
those of other test folders)."""
