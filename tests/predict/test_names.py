"""netdyn.predict.names: feature names read back into their parts."""

from __future__ import annotations

import netdyn.predict as P


def test_parse_feature_names():
    p = P.parse_feature_name("features.3.eigenvector.median@e0.5")
    assert (p["source"], p["scope"], p["layer"], p["property"], p["aggregator"], p["epoch"], p["delta"]) == \
        ("graph", "features.3", "features.3", "eigenvector", "median", 0.5, False)
    d = P.parse_feature_name("d(all.strength.mean)@e2")
    assert (d["scope"], d["layer"], d["property"], d["aggregator"], d["epoch"], d["delta"]) == \
        ("all", None, "strength", "mean", 2.0, True)
    assert P.parse_feature_name("curve.test_acc@e1")["property"] == "test_acc"
    w = P.parse_feature_name("w.classifier.2.weight.q25")
    assert (w["source"], w["layer"], w["property"], w["aggregator"]) == ("weights", "classifier.2", "weight", "q25")
    assert P.parse_feature_name("run.width")["source"] == "run"
    assert P.parse_feature_name("something odd")["property"] is None
    assert list(P.feature_name_table(["early_acc", "d(x.y.z)@e1"])["delta"]) == [False, True]
