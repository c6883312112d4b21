"""netdyn.figures.save_figure: PNG and PDF beside each other, byte-identical when the figure is."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from netdyn.figures import save_figure  # noqa: E402


def _draw():
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [0, 1, 4])
    return fig


def test_the_same_figure_gives_the_same_bytes(tmp_path):
    a = save_figure(_draw(), tmp_path / "a.png")
    b = save_figure(_draw(), tmp_path / "b.png")
    assert [p.suffix for p in a] == [".png", ".pdf"]
    for pa, pb in zip(a, b):
        assert pa.read_bytes() == pb.read_bytes(), pa.suffix
    assert b"CreationDate" not in (tmp_path / "a.pdf").read_bytes()
