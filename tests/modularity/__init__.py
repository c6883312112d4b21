"""Tests of netdyn.modularity, one module per module of the package."""
