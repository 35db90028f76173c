#!/usr/bin/env bash
# Writes outputs that a refactor must keep byte-identical and prints their hashes: the first-level bench run
# (bench first-level --dir) and a smoothed two-run AR(1) fit of two simulated runs on one grid.
# Usage: scripts/baseline-outputs.sh OUT_DIR   (after `dotnet build -c Release`)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: baseline-outputs.sh OUT_DIR}
rm -rf "$out"; mkdir -p "$out"
F="dotnet src/Glm.Cli/bin/Release/net10.0/fmriglm.dll"
$F bench first-level --dir "$out/bench" >"$out/bench.log" 2>&1
$F simulate --size tiny --subjects 2 --seed 7 --quiet "$out/sim"
d="$out/sim/derivatives/fmriprep"
run() { echo "--bold $d/sub-0$1/func/sub-0$1_task-localizer_run-1_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz --events $out/sim/sub-0$1/func/sub-0$1_task-localizer_run-1_events.tsv --confounds $d/sub-0$1/func/sub-0$1_task-localizer_run-1_desc-confounds_timeseries.tsv"; }
# shellcheck disable=SC2046
$F first-level $(run 1) $(run 2) --tr 2 --confound-columns trans_x,trans_y,trans_z,rot_x,rot_y,rot_z --smoothing-fwhm 5 --contrast faces-houses --contrast faces \
  --out "$out/smoothed" >"$out/smoothed.log" 2>&1
(cd "$out" && find bench smoothed -type f ! -name '*.tsv.tmp' \( -name '*.nii*' -o -name '*.tsv' -o -name '*.json' \) \
  ! -name 'bold*' ! -name 'events*' ! -name 'confounds*' | sort | xargs sha256sum)
