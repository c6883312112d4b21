"""bench/cmd_posthoc.py: its plain in-memory reference gives netdyn.cmd's modes and coefficients, and its
goal arithmetic on hand-made records."""

from __future__ import annotations

import numpy as np

from bench.cmd_posthoc import goals, reference_posthoc
from netdyn import cmd

from planted_modes import planted


def test_reference_equals_streaming_posthoc():
    p = planted(T=20, N=4000, n_modes=3, noise=0.02, seed=3, constant_share=0.1, dtype=np.float32)
    W = p.W.copy()
    W[:, 5] = 1e4  # far from zero and constant
    res = cmd.posthoc(W, 5, n_samples=300, chunk=333)
    ref = reference_posthoc(W, 5, res.samples)
    np.testing.assert_array_equal(ref["sample_labels"], res.sample_labels)
    np.testing.assert_array_equal(ref["reference_columns"], res.reference_columns)
    np.testing.assert_array_equal(ref["labels"], res.labels)
    scale = np.abs(ref["a"]) * np.abs(res.references).max() + np.abs(ref["b"])
    assert np.max(np.abs(res.a - ref["a"]) / scale) < 1e-9 and np.max(np.abs(res.b - ref["b"]) / scale) < 1e-9
    np.testing.assert_allclose(res.relative_error, ref["relative_error"], rtol=1e-9)


def test_goals_by_hand():
    rec = [{"width": w, "variant": v, "wall_s": s, "peak_above_import_mb": m, "outputs_mb": o}
           for w, v, s, m, o in [(2, "streaming", 3.0, 60.0, 20.0), (2, "reference", 5.0, 700.0, 20.0),
                                 (4, "streaming", 9.0, 130.0, 80.0), (4, "streaming", 8.0, 120.0, 80.0),
                                 (4, "reference", 7.5, 2800.0, 80.0)]]
    agree = {2: {"same_reference_columns": True, "labels_agree": 1.0, "max_rel_diff_a": 1e-13, "max_rel_diff_b": 0.0},
             4: {"same_reference_columns": True, "labels_agree": 1.0, "max_rel_diff_a": 1e-12, "max_rel_diff_b": 1e-14}}
    g = goals(rec, agree)
    assert g["same_modes_and_coefficients"]["met"]
    assert g["memory_ratio_ge_5x_at_w4"] == {"ratio": 2800.0 / 120.0, "met": True}
    assert g["memory_le_0.45GB_at_w4"]["met"]
    assert g["flat_in_N"]["working_mb_by_width"] == {"w2": 40.0, "w4": 40.0} and g["flat_in_N"]["met"]
    assert g["no_slower"] == {"streaming_s": 8.0, "reference_s": 7.5, "met": False}
    agree[4]["labels_agree"] = 0.999
    assert not goals(rec, agree)["same_modes_and_coefficients"]["met"]
