"""Snakemake entry point of rule `collect_graphs`: signature table, graph sizes."""
import sys

sm = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, str(__import__("pathlib").Path(sm.scriptdir).parent))  # the netdyn package

import pandas as pd  # noqa: E402

from netdyn import runlog  # noqa: E402
from netdyn.graphs import graph_sizes  # noqa: E402

runlog.setup(sm.log[0])
signatures = pd.concat([pd.read_csv(f) for f in sm.input.signatures], ignore_index=True)
signatures.to_csv(sm.output.signatures, index=False)
archs = [("lenet", {}), ("alexnet", {}), ("vgg", {"depth": 11}), ("resnet", {"depth": 20})]
sizes = pd.concat([graph_sizes(a, sm.params.widths, image_size=sm.params.image_size, **kw) for a, kw in archs])
sizes.to_csv(sm.output.sizes, index=False)
