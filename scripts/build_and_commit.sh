#!/usr/bin/env bash
# Long dataset builds that outlive the machine: run `coreloss dataset build` in the background and
# commit its finished pieces (the consolidated HDF5 file and the finished part files) to git every
# few minutes, so that a fresh clone resumes where this machine stopped and no computed site is lost.
#
#   scripts/build_and_commit.sh OUT MINUTES [coreloss dataset build options ...]
#   e.g. nohup scripts/build_and_commit.sh datasets/sio2_gpaw_lcao.h5 20 --workers 2 --budget 1200 &
#
# Resume on a fresh clone: the same command (the build reads OUT and OUT.parts/ from the checkout).
# Commits only OUT and OUT.parts/ (the writer lock and temp files are git-ignored), on the current
# branch, with a message that counts the sites. Stops when the build ends; a last commit follows.
set -uo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 OUT MINUTES [coreloss dataset build options ...]" >&2
  exit 2
fi
out=$1; minutes=$2; shift 2
case "$minutes" in ''|*[!0-9]*) echo "error: MINUTES must be a whole number, got '$minutes'" >&2; exit 2;; esac
cd "$(git rev-parse --show-toplevel)" || exit 1
py=${CORELOSS_PYTHON:-.venv/bin/python}
log="${out}.log"

checkpoint() {
  # the parts folder disappears when a build ends: name only paths on disk or in the index
  local paths=() p
  for p in "$out" "${out}.parts"; do
    if [ -e "$p" ] || [ -n "$(git ls-files -- "$p")" ]; then paths+=("$p"); fi
  done
  [ ${#paths[@]} -eq 0 ] && return 0
  git add -A -- "${paths[@]}"
  if ! git diff --cached --quiet -- "${paths[@]}"; then
    n=$("$py" - "$out" <<'EOF'
import sys
from coreloss.dataset_store import collect
from pathlib import Path
t, _ = collect(Path(sys.argv[1]))
print(f"{len(t.rows)} sites, {len(t.failures)} failed")
EOF
)
    git commit -q -m "dataset build checkpoint: $(basename "$out") ($n)" -- "${paths[@]}" \
      && echo "$(date -u +%FT%TZ) committed checkpoint: $n"
  fi
}

OMP_NUM_THREADS=1 "$py" -m coreloss dataset build --out "$out" "$@" >>"$log" 2>&1 &
pid=$!
echo "$(date -u +%FT%TZ) build pid $pid, log $log, commits every $minutes min"
while kill -0 "$pid" 2>/dev/null; do
  for _ in $(seq $((minutes * 6))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 10
  done
  checkpoint
done
wait "$pid"; rc=$?
checkpoint
echo "$(date -u +%FT%TZ) build ended with status $rc"
exit "$rc"
