#!/usr/bin/env bash
# make demo: the whole chain on the embedded default SiO2 set, in about four minutes on 2 cores (245 s measured).
#   structures -> O sites + geometric labels -> xtb spectra + electronic labels (a small subset)
#   -> inverse/forward models (trained on the subset) -> evaluation + parity figure
#   -> forward simulation of one structure -> predictions and maps on measured spectra.
# Every stage is idempotent: rerunning resumes the dataset build and replaces the other outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MPLBACKEND=Agg PYTHONWARNINGS=ignore
CL=.venv/bin/coreloss
OUT=${DEMO_OUT:-demo_out}
N_STRUCT=${DEMO_STRUCTURES:-20}
SHARED=../shared/data
mkdir -p "$OUT"
t0=$(date +%s)
stage() { echo; echo "== $1   [$(( $(date +%s) - t0 )) s]"; }

stage "1. structure set (IZA zeolites, AFLOW/pyxtal prototypes, AMCSD minerals, CHGNet-generated phases)"
$CL structures build --out "$OUT/structures.json" --overwrite

stage "2. symmetry-unique O sites and geometric labels"
$CL sites summary "$OUT/structures.json" --png "$OUT/geometric_labels.png" --csv "$OUT/o_sites.csv"

stage "3. xtb (GFN2-xTB, Z+1 core hole) spectra + electronic labels for the $N_STRUCT cheapest structures"
$CL dataset build --engine xtb --structures "$OUT/structures.json" --limit-structures "$N_STRUCT" \
    --workers 2 --out "$OUT/subset_xtb.h5"
$CL dataset info "$OUT/subset_xtb.h5"

stage "4. train the inverse (5-member MLP ensemble) and forward (SOAP -> spectrum) models on the subset"
$CL train "$OUT/subset_xtb.h5" --out "$OUT/inverse_model.pt" --forward-out "$OUT/forward_model.pt" \
    --members 5 --epochs 80 --force

stage "5. evaluate: metrics per label + 2x3 parity figure"
$CL evaluate "$OUT/subset_xtb.h5" --model "$OUT/inverse_model.pt" --out "$OUT/evaluation" --force

stage "6. forward model (shipped, trained on the larger xtb dataset): spectra of every O site of alpha-quartz"
QID=amcsd-Quartz-alpha
grep -q "\"id\": \"$QID\"" "$OUT/structures.json" || QID=aflow-A2B_hP9_152_c_a
$CL simulate "$OUT/structures.json" --id "$QID" --out "$OUT/simulate" --force

if [ -d "$SHARED/experimental" ]; then
  stage "7. measured spectra (not SiO2: expected to be flagged out of distribution)"
  $CL predict "$SHARED/experimental/exspy_coreloss_spectrum.msa" \
      --lowloss "$SHARED/experimental/exspy_lowloss_spectrum.msa" --out "$OUT/predict" --overwrite
  $CL map "$SHARED/experimental/LSMO_linescan.hspy" \
      --lowloss "$SHARED/experimental/LSMO_linescan_low_loss.hspy" --out "$OUT/map_lsmo" --overwrite
else
  echo "(skipping measured spectra: $SHARED/experimental not found)"
fi

stage "done"
echo "outputs in $OUT/:"; ls "$OUT"
