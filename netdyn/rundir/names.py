"""File names of a run directory (``<runs dir>/<run id>/``), importable without torch (Snakemake rules)."""

CONFIG = "config.json"  # run settings, study config, versions (written when training starts)
CURVES = "curves.csv"  # one row per measured snapshot (rewritten every epoch)
RESULT = "result.json"  # outcome; written last, so its presence means the run is finished
TRAJECTORY_DATA = "trajectory.bin"  # (T, P) float matrix of every kept snapshot, see netdyn.trajectory
TRAJECTORY_MANIFEST = "trajectory.json"  # the tensor table (offsets, shapes, dtypes) and snapshot table
CHECKPOINT = "checkpoint.safetensors"  # last completed epoch while training: weights, buffers, momentum, book-keeping
CHECKPOINT_PREVIOUS = "checkpoint.previous.safetensors"  # the epoch before: the fallback if CHECKPOINT is damaged
CHECKPOINT_INFO = "checkpoint.json"  # a readable copy of CHECKPOINT's book-keeping (never read back)
LOCK = "train.lock"  # held (flock) by the one process training the run; holds its pid and host

TMP_SUFFIX = ".tmp"  # a file being written: renamed over its name once complete

RUN_OUTPUTS = (CONFIG, CURVES, TRAJECTORY_DATA, TRAJECTORY_MANIFEST, RESULT)  # what a finished run holds
TRAINING_STATE = (CHECKPOINT, CHECKPOINT_PREVIOUS, CHECKPOINT_INFO)  # removed when the run finishes
