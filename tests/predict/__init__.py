"""Tests of netdyn.predict (a package, so that basenames may repeat those of tests/graphs/)."""
