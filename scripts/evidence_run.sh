#!/usr/bin/env bash
# Run a study (default: the evidence study) with its wall time and the machine's load measured, then write its
# evidence: results/<study>/run_time.json, then scripts/evidence.py (tables, figures, provenance, summary).
#   bash scripts/evidence_run.sh                      # config/evidence.yaml -> evidence/digits_evidence
#   bash scripts/evidence_run.sh config/x.yaml x      # another config and study name
set -euo pipefail
cd "$(dirname "$0")/.."
config="${1:-config/evidence.yaml}"
study="${2:-evidence}"
mkdir -p "results/$study"
samples="results/$study/load_samples.txt"
: > "$samples"
( while true; do echo "$(date +%s) $(cut -d' ' -f1 /proc/loadavg)" >> "$samples"; sleep 30; done ) &
sampler=$!
trap 'kill $sampler 2>/dev/null || true' EXIT
start=$(date +%s)
bash scripts/study.sh --configfile "$config"
end=$(date +%s)
kill $sampler 2>/dev/null || true
.venv/bin/python - "$study" "$start" "$end" "$samples" <<'PY'
import json, sys, datetime as dt
study, start, end, samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
loads = [float(l.split()[1]) for l in open(samples) if l.strip()]
iso = lambda t: dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="seconds")
rec = {"start": iso(start), "end": iso(end), "wall_s": end - start, "cores": __import__("os").cpu_count(),
       "load_1min_mean": round(sum(loads) / len(loads), 2) if loads else None,
       "load_1min_max": max(loads) if loads else None}
rec["summary"] = (f"{rec['wall_s'] / 60:.0f} min wall on {rec['cores']} cores ({rec['start']} to {rec['end']}), "
                  f"1-min load average {rec['load_1min_mean']} on average, at most {rec['load_1min_max']}.")
json.dump(rec, open(f"results/{study}/run_time.json", "w"), indent=1)
PY
.venv/bin/python scripts/evidence.py --study "$study" --config "$config"
