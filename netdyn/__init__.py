"""netdyn: how neural networks change while they train.

The science of the study lives here; the Snakemake rules only call into it.
"""

__version__ = "0.1.0"
