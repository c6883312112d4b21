"""Training-throughput benchmark of netdyn's trainer (entry point: ``bench/train_throughput.py``).

Modules, one concern each:

* :mod:`.common`  clocks, device sync, the two exceptions that end a measurement, error reasons;
* :mod:`.data`    synthetic CIFAR-10 files, synthetic tensors, and the seed-style loop it is compared with;
* :mod:`.trainer` measuring ``netdyn.train.PackTrainer`` through its documented hooks (``TrainerHooks``);
* :mod:`.project` projected wall time of a study config (e.g. ``config/paper.yaml``) on this device;
* :mod:`.report`  goals (``bench/goals.yaml``), machine facts, ratios, JSON and the printed table;
* :mod:`.run`     the main table: seed loop, single, packed, precision variants, CPU pack check;
* :mod:`.cli`     the command line.
"""
