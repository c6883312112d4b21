"""Figures of every stage, one module per stage. Matplotlib with the Agg backend: jobs have no display."""

import matplotlib

matplotlib.use("Agg")
