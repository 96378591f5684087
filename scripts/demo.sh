#!/usr/bin/env bash
# make demo: the main job on the embedded default set. Each stage is resumable/idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MPLBACKEND=Agg
CL=.venv/bin/coreloss
OUT=demo_out
mkdir -p "$OUT"
echo "== 1. structure set"
$CL structures build --out "$OUT/structures.json"
echo "== 2. O sites and geometric labels"
$CL sites summary "$OUT/structures.json" --png "$OUT/geometric_labels.png"
