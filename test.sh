#!/usr/bin/env bash
# Runs every test of FmriGlm on a fresh clone: restores the local tools (paket) and packages, builds in Release,
# runs the F# core's Expecto suite, the C# facade's xunit suite and every docs/examples/*.fsx script, and closes
# with one line `N passed, N failed` summed over the three. Exit status 0 only when everything passed.
set -uo pipefail
cd "$(dirname "$0")"
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

step() { echo "== $*"; }
fail_setup() { echo "$1"; echo "0 passed, 1 failed"; exit 1; }

step "restore tools and packages"
dotnet tool restore >"$logs/tools.log" 2>&1 || { cat "$logs/tools.log"; fail_setup "dotnet tool restore failed"; }
dotnet paket restore >"$logs/paket.log" 2>&1 || { cat "$logs/paket.log"; fail_setup "paket restore failed"; }
step "build (Release)"
dotnet build FmriGlm.sln -c Release -nologo -v quiet >"$logs/build.log" 2>&1 || { cat "$logs/build.log"; fail_setup "build failed"; }

step "Glm.Core.Tests (Expecto)"
dotnet run --project tests/Glm.Core.Tests -c Release --no-build -- --colours 0 2>&1 | tee "$logs/core.log"
core_rc=${PIPESTATUS[0]}
step "Glm.Api.Tests (xunit)"
dotnet test tests/Glm.Api.Tests -c Release --no-build -nologo 2>&1 | tee "$logs/api.log"
api_rc=${PIPESTATUS[0]}

step "docs/examples (dotnet fsi)"
ep=0; ef=0
for script in docs/examples/*.fsx; do
  [ -e "$script" ] || continue
  if timeout 600 dotnet fsi "$script" >"$logs/example.log" 2>&1; then
    ep=$((ep + 1)); echo "passed: $script"
  else
    ef=$((ef + 1)); echo "FAILED: $script"; tail -20 "$logs/example.log"
  fi
done

# Expecto: "N tests run in … – P passed, I ignored, F failed, E errored."
read -r cp cf < <(sed "s/\x1b\[[0-9;?]*[A-Za-z]//g" "$logs/core.log" | grep -Eo '[0-9]+ passed, [0-9]+ ignored, [0-9]+ failed, [0-9]+ errored' | tail -1 |
  awk '{print $1, $5 + $7}')
# VSTest: "Passed!  - Failed:     F, Passed:     P, Skipped: …"
read -r ap af < <(grep -Eo 'Failed: +[0-9]+, Passed: +[0-9]+' "$logs/api.log" | tail -1 | awk '{gsub(",","");print $4, $2}')
cp=${cp:-0}; cf=${cf:-0}; ap=${ap:-0}; af=${af:-0}
# A runner that crashed before its summary counts as one failure.
if [ "$core_rc" -ne 0 ] && [ "$cf" -eq 0 ]; then cf=1; fi
if [ "$api_rc" -ne 0 ] && [ "$af" -eq 0 ]; then af=1; fi
echo "core: $cp passed, $cf failed; api: $ap passed, $af failed; examples: $ep passed, $ef failed"
echo "$((cp + ap + ep)) passed, $((cf + af + ef)) failed"
[ $((cf + af + ef)) -eq 0 ]
