"""README's blocks on what the default study shows for CMD and modularity, next to the papers' numbers, from
the committed ``evidence/default_study/summary.json`` (made by scripts/default_study_summary.py). Registered in
scripts/readme_tables.py, which checks that the JSON is committed and names the commit that wrote it.

Words such as "gain" or "loss" are chosen here from the numbers, against one test image's worth of accuracy
(1/450 on digits): a difference smaller than that is "no difference".
"""

from __future__ import annotations

SOURCE = "evidence/default_study/summary.json"
DIGITS_TEST_IMAGES = 450
PAPER_CMD = "LeNet-5 on CIFAR-10: SGD 75.36% → online CMD 76.77% (+1.41 points); ResNet18 90.91% → 92.43%"
PAPER_MODULARITY = ("Q rises from about 0.1–0.2 in the first layers to about 0.8 in the last on CIFAR-10; "
                    "VGG-11 shows no plateau")


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def _verdict(diff: float) -> str:
    if abs(diff) < 1 / DIGITS_TEST_IMAGES:
        return "no difference"
    return f"a gain of {100 * diff:.1f} points" if diff > 0 else f"a loss of {100 * -diff:.1f} points"


def _origin(src) -> str:
    return (f"Default study (`config/config.yaml`) run at commit {src.get('commit')[:7]}"
            f"{' with uncommitted changes' if src.get('uncommitted_changes') else ''} on {src.get('machine')}; "
            f"{src.provenance()}." + (f" {src.get('note')}" if src.data.get("note") else ""))


def default_cmd(src) -> str:
    deep, cheap = src.get("cmd", "deep"), src.get("cmd", "cheap_rel_error")
    out = [_origin(src), "",
           "| run | M | rel. error, last snapshot | SGD | SGD, BatchNorm re-estimated | post-hoc CMD | online CMD "
           "| embedded CMD (own run) | share trained in its last epoch |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in deep:
        out.append(f"| {r['run_id']} | {r['n_modes']} | {r['rel_error_final']:.3f} | {_pct(r['acc_sgd'])} | "
                   f"{_pct(r['acc_sgd_bn_recomputed'])} | {_pct(r['acc_cmd'])} | {_pct(r['acc_online_cmd'])} | "
                   f"{_pct(r['acc_embedded_cmd'])} | {_pct(r['trained_fraction_final'])}% |")
    out += ["", "Test accuracy (%) at the last epoch. Modelled weights (post-hoc, online) are tested with BatchNorm "
                "statistics re-estimated on training images, so they are compared with the SGD weights treated the "
                "same way (in a net without BatchNorm the two SGD columns are equal); the embedded-CMD twin is a "
                "training run of its own, tested as training tests (running statistics), so it is compared with the "
                f"SGD run's own accuracy. The paper: {PAPER_CMD}. Here:"]
    for run in dict.fromkeys(r["run_id"] for r in deep):
        rows = [r for r in deep if r["run_id"] == run]
        base = rows[0]["acc_sgd_bn_recomputed"]
        online = "; ".join(f"M={r['n_modes']}: {_verdict(r['acc_online_cmd'] - base)}" for r in rows)
        line = f"* {run}: online CMD against SGD — {online}."
        if rows[0]["acc_sgd"] != base:
            line += (f" Re-estimating BatchNorm statistics alone moves the SGD weights from {_pct(rows[0]['acc_sgd'])}% "
                     f"to {_pct(base)}%.")
        emb = rows[0]["acc_embedded_cmd"]
        if emb is not None:
            line += (f" Embedded CMD: {_verdict(emb - rows[0]['acc_sgd'])} against the SGD run, training "
                     f"{_pct(rows[0]['trained_fraction_final'])}% of the parameters in the last epoch.")
        out.append(line)
    out += ["", "Each row is one run of one seed, so none of these differences has an interval; on 450 test images "
                "one run's accuracy moves by several points from one epoch to the next (the SGD weights one snapshot "
                "before the last: " + ", ".join(f"{run} {_pct(r['acc_sgd_previous'])}%" for run, r in
                                                {r["run_id"]: r for r in deep}.items()) + ")."]
    out += ["", "Relative reconstruction error ‖w − ŵ‖ / ‖w‖ at the last snapshot, every run (the cheap pass):", "",
            "| architecture | M | runs | median | 90th percentile |", "|---|---:|---:|---:|---:|"]
    for r in cheap:
        out.append(f"| {r['arch_label']} | {r['n_modes']} | {r['n_runs']} | {r['median']:.3f} | {r['q90']:.3f} |")
    return "\n".join(out)


def _span(values) -> str:
    lo, hi = f"{min(values):.2f}", f"{max(values):.2f}"
    return lo if lo == hi else f"{lo}–{hi}"


def _candidates(plateau: dict) -> str:
    cand = plateau.get("candidate_layers")
    if not isinstance(cand, str) or not cand:
        return "none"
    layers = cand.split(";")
    convs = [c for c in layers if c.startswith("features.")]
    return f"{', '.join(layers)} ({len(convs)} of them in the convolutional part)"


def default_modularity(src) -> str:
    m = src.get("modularity")
    plateaus = {p["arch_label"]: p for p in m["plateaus"]}
    out = [_origin(src), "",
           f"Final snapshot, runs that learned (final accuracy ≥ {m['learned_fraction']:g} × the best of their "
           "architecture):", "",
           "| architecture | runs | layers | Q, first layer (median) | Q, last layer (median) | highest Q (median) "
           "| runs whose last layer beats the first | plateau candidates |",
           "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in m["layers"]:
        cand = plateaus.get(r["arch_label"], {}).get("candidate_layers")
        out.append(f"| {r['arch_label']} | {r['n_runs']} | {r['n_layers']} | {r['q_first_median']:.2f} | "
                   f"{r['q_last_median']:.2f} | {r['q_max_median']:.2f} | {r['rises_runs']} of {r['n_runs']} | "
                   f"{cand.replace(';', ', ') if isinstance(cand, str) and cand else 'none'} |")
    layers = m["layers"]
    firsts, lasts = [r["q_first_median"] for r in layers], [r["q_last_median"] for r in layers]
    rises, runs = sum(r["rises_runs"] for r in layers), sum(r["n_runs"] for r in layers)
    out += ["", f"The paper: {PAPER_MODULARITY}. Here, on digits, the first layer's Q is already "
                f"{_span(firsts)} (median per architecture) — the classes are close to separable "
                f"in pixel space, unlike CIFAR-10's — and the last layer's {_span(lasts)}; the last "
                f"layer beats the first in {rises} of {runs} runs. Plateau candidates by architecture: "
                + "; ".join(f"{arch}: {_candidates(p)}" for arch, p in plateaus.items()) + "."]
    pruning = src.get("pruning")
    if pruning:
        out += ["", "Pruning check (retrained without the plateau layers, and a control without as many other "
                    "layers; test accuracy difference to the original, mean over seeds with its interval):", "",
                "| architecture | comparison | seeds | dropped layers | mean difference (points) | interval | "
                "parameters (original → variant) | note |", "|---|---|---:|---|---:|---|---|---|"]
        for r in pruning["summary"]:
            mean = "–" if r.get("mean_diff") is None else f"{100 * r['mean_diff']:+.1f}"
            ci = ("–" if r.get("ci_low") is None else
                  f"{100 * r['ci_low']:+.1f} … {100 * r['ci_high']:+.1f} ({r['confidence']:.0%})")
            params = ("–" if r.get("n_params_variant") is None else
                      f"{r['n_params_original']:,} → {r['n_params_variant']:,}")
            out.append(f"| {r['arch_label']} | {r['comparison']} | {r.get('n_seeds') or 0} | "
                       f"{r.get('dropped_layers') or '–'} | {mean} | {ci} | {params} | {r.get('note') or ''} |")
    return "\n".join(out)


RENDER = {"default_cmd": (default_cmd, SOURCE), "default_modularity": (default_modularity, SOURCE)}
