#!/usr/bin/env bash
# Run a study (default: the evidence study) with its wall time and the machine's load measured, then write its
# evidence: results/<study>/run_time.json, scripts/evidence_stability.py (the analysis rerun with another seed),
# scripts/evidence.py (tables, figures, provenance, summary). Then commit evidence/digits_evidence/ and run
# .venv/bin/python scripts/evidence.py --readme-only to regenerate README's prediction section from it.
#   bash scripts/evidence_run.sh                      # config/evidence.yaml -> evidence/digits_evidence
#   bash scripts/evidence_run.sh config/x.yaml x      # another config and study name
#   bash scripts/evidence_run.sh config/evidence_threads2.yaml evidence_threads2 --run-only
#                                                     # only the timed run (a study scripts/evidence_compare.py reads)
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
rc=0
bash scripts/study.sh --configfile "$config" || rc=$?
end=$(date +%s)
# a failure after the prediction stage (a figure rule) leaves every table the evidence needs: go on, say so
for t in runs predictions prediction_metrics; do
    [ -s "results/$study/tables/$t.csv" ] \
        || { echo "evidence_run: results/$study/tables/$t.csv missing (study exit $rc)" >&2; exit 1; }
done
[ "$rc" -eq 0 ] || echo "evidence_run: the study exited $rc after writing its prediction tables; see its log" >&2
kill $sampler 2>/dev/null || true
.venv/bin/python - "$study" "$start" "$end" "$samples" "$rc" <<'PY'
import json, sys, datetime as dt
study, start, end, samples, rc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
loads = [float(l.split()[1]) for l in open(samples) if l.strip()]
iso = lambda t: dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="seconds")
commit = __import__("subprocess").run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
rec = {"start": iso(start), "end": iso(end), "wall_s": end - start, "cores": __import__("os").cpu_count(), "commit": commit,
       "load_1min_mean": round(sum(loads) / len(loads), 2) if loads else None,
       "load_1min_max": max(loads) if loads else None, "study_exit_code": rc}
rec["summary"] = (f"{rec['wall_s'] / 60:.0f} min wall on {rec['cores']} cores ({rec['start']} to {rec['end']}), "
                  f"1-min load average {rec['load_1min_mean']} on average, at most {rec['load_1min_max']}"
                  + (f"; the study exited {rc} after its prediction tables were written." if rc else "."))
json.dump(rec, open(f"results/{study}/run_time.json", "w"), indent=1)
PY
[ "${3:-}" = "--run-only" ] && exit 0
.venv/bin/python scripts/evidence_stability.py --study "$study" --config "$config"
.venv/bin/python scripts/evidence.py --study "$study" --config "$config"
