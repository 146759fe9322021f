#!/usr/bin/env bash
# Our propensity models beside scikit-learn's LogisticRegression and xgboost on the SAME seeded
# split: `ringwise train --export-split` writes the split it trained on (train.csv = its fit and
# calibration rows, test.csv = its held-out rows), `ringwise score` scores test.csv with each of
# our models, and scripts/propensity_compare.py fits the Python models on train.csv and judges
# all of them on test.csv with one metric code. Makes target/propensity-ref/venv with
# scikit-learn and xgboost from PyPI on first use.
# Usage: scripts/propensity_compare.sh [CSV (default models/data/caravan.csv)] [LABEL (Purchase)]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
csv="${1:-models/data/caravan.csv}"
label="${2:-Purchase}"
[ -f "$csv" ] || { echo "$csv is missing: run scripts/setup.sh" >&2; exit 1; }
venv=target/propensity-ref/venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import sklearn, xgboost" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "scikit-learn==1.9.1" "xgboost==3.2.0"
fi
work=target/propensity-ref/run
rm -rf "$work"
cargo build -q -p orchestrator --bin ringwise
ringwise=target/debug/ringwise
"$ringwise" train --csv "$csv" --id customer_id --label "$label" --out "$work/model" --model both \
  --export-split "$work/split"
for kind in logistic gbm; do
  "$ringwise" score --model "$work/model/$kind" --csv "$work/split/test.csv" --out "$work/scores_$kind.csv"
done
"$venv/bin/python" scripts/propensity_compare.py "$work/split" \
  "ours: logistic (linfa, calibrated)=$work/scores_logistic.csv" \
  "ours: gbm (perpetual, calibrated)=$work/scores_gbm.csv"
