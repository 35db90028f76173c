#!/usr/bin/env bash
# Runs every test of FmriGlm on a fresh clone: restores the local tools (paket) and packages, builds in Release,
# runs the F# core's Expecto suite, the C# facade's xunit suite and every docs/examples/*.fsx script, and closes
# with one line `N passed, N failed` summed over the three runners. Exit status 0 only when everything passed.
#
# Beyond the runners' own verdicts, a runner fails (each failed check below adds one to its failures) when:
#   - it printed no summary line (crashed, or a test called exit), whatever its exit code;
#   - it ran past its timeout (FMRIGLM_TEST_TIMEOUT, default 20m per runner; 10m per example script);
#   - it has focused tests: Expecto runs with --fail-on-focused-tests; xunit has no focus, but a filter (runsettings,
#     a VSTestTestCaseFilter property) runs fewer tests than the sources declare, so the xunit total must equal the
#     number of [Fact], [Property] and [InlineData] attributes in tests/Glm.Api.Tests (a [MemberData] theory would
#     need this count taught how many rows it has);
#   - it ignored or skipped a test that tests/allowed-skips.txt does not allow (each such test is one failure);
#   - its total (passed + failed + skipped) is below its minimum in tests/minimum-counts.txt;
#   - (core) the run left files in the repository (`git status` differs from before): tests write below temporary
#     folders only.
# An example script passes when it exits 0 and printed at least one line starting `checked: ` (the scripts' `check`
# helper prints it after a value the script computed was found right, and exits 1 when it is wrong), so a script
# that asserts nothing fails.
#
# `./test.sh --fuzz N [SEED]` runs only the reliability suites (tests/Glm.Core.Tests/Reliability: TSV, contrast,
# NIfTI geometry and CLI fuzzing, fault injection) with N cases per property (the CLI gets N/16 processes) and the
# given seed for the CLI mutations: a long campaign, not part of CI.
set -uo pipefail
cd "$(dirname "$0")"
fuzz_cases=""
if [ "${1:-}" = "--fuzz" ]; then
  [[ "${2:-}" =~ ^[0-9]+$ ]] || { echo "usage: ./test.sh [--fuzz CASES [SEED]]"; exit 2; }
  fuzz_cases=$2; fuzz_seed=${3:-17}
fi
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
runner_timeout=${FMRIGLM_TEST_TIMEOUT:-20m}

step() { echo "== $*"; }
fail_setup() { echo "$1"; echo "0 passed, 1 failed"; exit 1; }
strip_colours() { sed "s/\x1b\[[0-9;?]*[A-Za-z]//g"; }

# tests/allowed-skips.txt: `runner | ERE | reason`, matched (grep -E) against `<test name> -- <skip message>`.
allowed_skips=tests/allowed-skips.txt
[ -f "$allowed_skips" ] || fail_setup "$allowed_skips is missing"
if bad=$(grep -vE '^[[:space:]]*(#|$)' "$allowed_skips" | grep -vE '^(core|api) \| .+ \| .*[^[:space:]].*$'); then
  fail_setup "$allowed_skips: every line is 'runner | pattern | reason' (runner core or api, reason not empty): $bad"
fi
# allowed RUNNER RECORD: whether a line of the allow-list for RUNNER matches RECORD.
allowed() {
  local pattern
  while IFS= read -r pattern; do
    printf '%s\n' "$2" | grep -qE -- "$pattern" && return 0
  done < <(grep -E "^$1 \| " "$allowed_skips" | sed -E 's/^[a-z]+ \| (.*) \| [^|]*$/\1/')
  return 1
}
# tests/minimum-counts.txt: `runner minimum`.
minimum() { awk -v r="$1" '$1 == r { print $2 }' tests/minimum-counts.txt 2>/dev/null; }
min_core=$(minimum core); min_api=$(minimum api); min_examples=$(minimum examples)
for m in "$min_core" "$min_api" "$min_examples"; do
  [[ "$m" =~ ^[0-9]+$ ]] || fail_setup "tests/minimum-counts.txt needs one 'runner minimum' line for core, api and examples"
done

problems=()
# problem RUNNER MESSAGE: records a failed check; the caller adds one to the runner's failures.
problem() { problems+=("$1: $2"); echo "FAILED check, $1: $2"; }
# timed_out RC: whether `timeout` stopped the command.
timed_out() { [ "$1" -eq 124 ] || [ "$1" -eq 137 ]; }

# the tests must write only below temporary folders: the repository's state before, compared at the end
repo_before=$(git status --porcelain --untracked-files=all 2>/dev/null)

step "restore tools and packages"
dotnet tool restore >"$logs/tools.log" 2>&1 || { cat "$logs/tools.log"; fail_setup "dotnet tool restore failed"; }
dotnet paket restore >"$logs/paket.log" 2>&1 || { cat "$logs/paket.log"; fail_setup "paket restore failed"; }
step "build (Release)"
dotnet build FmriGlm.sln -c Release -nologo -v quiet >"$logs/build.log" 2>&1 || { cat "$logs/build.log"; fail_setup "build failed"; }

# Reads `<test name> -- <skip message>` records on stdin for RUNNER (core|api): each allowed one is listed, each
# other is a problem. Sets named (records read), listed (allowed) and unlisted (failures).
judge_skips() {
  named=0; listed=0; unlisted=0
  while IFS= read -r record; do
    named=$((named + 1))
    if allowed "$1" "$record"; then
      listed=$((listed + 1)); echo "allowed skip, $1: $record"
    else
      unlisted=$((unlisted + 1)); problem "$1" "$2, not in $allowed_skips: $record"
    fi
  done
}

if [ -n "$fuzz_cases" ]; then
  step "reliability campaign: $fuzz_cases cases per property, CLI seed $fuzz_seed"
  FMRIGLM_FUZZ=$fuzz_cases FMRIGLM_FUZZ_SEED=$fuzz_seed dotnet run --project tests/Glm.Core.Tests -c Release --no-build -- \
    --colours 0 --filter Reliability --summary 2>&1 | strip_colours
  exit "${PIPESTATUS[0]}"
fi

step "Glm.Core.Tests (Expecto, timeout $runner_timeout)"
# --debug logs `<name> was ignored. <message>` for every ignored test; those lines are kept out of the screen.
timeout -k 30s "$runner_timeout" dotnet run --project tests/Glm.Core.Tests -c Release --no-build -- \
  --colours 0 --debug --fail-on-focused-tests 2>&1 | strip_colours | tee "$logs/core.log" | grep --line-buffered -v ' DBG\] '
core_rc=${PIPESTATUS[0]}
cp=0; cf=0; cs=0
# Expecto: "N tests run in … – P passed, I ignored, F failed, E errored."
core_summary=$(grep -Eo '[0-9]+ passed, [0-9]+ ignored, [0-9]+ failed, [0-9]+ errored' "$logs/core.log" | tail -1)
if timed_out "$core_rc"; then
  cf=$((cf + 1)); problem core "timed out after $runner_timeout"
elif [ -z "$core_summary" ]; then
  cf=$((cf + 1))
  if grep -q 'focused tests were found' "$logs/core.log"; then problem core "focused tests (ftestCase, ftestList, …), no summary line"
  else problem core "no summary line (exit code $core_rc)"; fi
else
  read -r cp ci cff cfe < <(echo "$core_summary" | awk '{print $1, $3, $5, $7}')
  judge_skips core ignored < <(sed -nE 's/^\[[0-9:]+ DBG\] (.*) was ignored\. (.*) <Expecto>$/\1 -- \2/p' "$logs/core.log")
  cf=$((cff + cfe + unlisted)); cs=$listed
  if [ "$named" -lt "$ci" ]; then cf=$((cf + 1)); problem core "$ci ignored, only $named named in the log"; fi
  if [ "$core_rc" -ne 0 ] && [ "$cf" -eq 0 ]; then cf=1; problem core "exit code $core_rc"; fi
  core_total=$((cp + cff + cfe + ci))
  if [ "$core_total" -lt "$min_core" ]; then cf=$((cf + 1)); problem core "$core_total tests, minimum $min_core"; fi
fi

step "Glm.Api.Tests (xunit, timeout $runner_timeout)"
timeout -k 30s "$runner_timeout" dotnet test tests/Glm.Api.Tests -c Release --no-build -nologo \
  --logger "trx;LogFileName=api.trx" --results-directory "$logs" 2>&1 | tee "$logs/api.log" | grep -v '^Results File: '
api_rc=${PIPESTATUS[0]}
ap=0; af=0; as=0
# VSTest: "Passed!  - Failed:     F, Passed:     P, Skipped:     S, Total:     T, …"
api_summary=$(grep -Eo 'Failed: +[0-9]+, Passed: +[0-9]+, Skipped: +[0-9]+, Total: +[0-9]+' "$logs/api.log" | tail -1)
if timed_out "$api_rc"; then
  af=$((af + 1)); problem api "timed out after $runner_timeout"
elif [ -z "$api_summary" ]; then
  af=$((af + 1)); problem api "no summary line (exit code $api_rc)"
else
  read -r aff ap ai at < <(echo "$api_summary" | tr -d ',' | awk '{print $2, $4, $6, $8}')
  # The TRX report names each skipped test (outcome NotExecuted) and gives its skip reason as <Message>.
  judge_skips api skipped < <(awk '/<UnitTestResult / && /outcome="NotExecuted"/ { n = $0; sub(/.* testName="/, "", n); sub(/".*/, "", n); m = "" }
                n != "" && /<Message>/ { m = $0; sub(/.*<Message>/, "", m); sub(/<\/Message>.*/, "", m) }
                n != "" && /<\/UnitTestResult>|\/>[[:space:]]*$/ && !/<Message>/ {
                  r = n " -- " m; gsub(/&lt;/, "<", r); gsub(/&gt;/, ">", r); gsub(/&quot;/, "\"", r); gsub(/&amp;/, "\\&", r)
                  print r; n = "" }' "$logs/api.trx" 2>/dev/null)
  af=$((aff + unlisted)); as=$listed
  if [ "$named" -lt "$ai" ]; then af=$((af + 1)); problem api "$ai skipped, only $named named in the log"; fi
  declared=$(cat tests/Glm.Api.Tests/*.cs | grep -cE '^[[:space:]]*\[(Fact|Property|InlineData)\b')
  if [ "$at" -ne "$declared" ]; then
    af=$((af + 1)); problem api "ran $at tests, the sources declare $declared (a filter or focus?)"
  fi
  if [ "$api_rc" -ne 0 ] && [ "$af" -eq 0 ]; then af=1; problem api "exit code $api_rc"; fi
  if [ "$at" -lt "$min_api" ]; then af=$((af + 1)); problem api "$at tests, minimum $min_api"; fi
fi

step "docs/examples (dotnet fsi, timeout 10m each)"
ep=0; ef=0
for script in docs/examples/*.fsx; do
  [ -e "$script" ] || continue
  timeout -k 30s 10m dotnet fsi "$script" >"$logs/example.log" 2>&1
  rc=$?
  if [ "$rc" -eq 0 ] && grep -q '^checked: ' "$logs/example.log"; then
    ep=$((ep + 1)); echo "passed: $script ($(grep -c '^checked: ' "$logs/example.log") checks)"
  else
    ef=$((ef + 1)); tail -20 "$logs/example.log"
    if timed_out "$rc"; then problem examples "$script timed out"
    elif [ "$rc" -ne 0 ]; then problem examples "$script exited with $rc"
    else problem examples "$script printed no 'checked: ' line: it asserts nothing"; fi
  fi
done
if [ $((ep + ef)) -lt "$min_examples" ]; then
  problem examples "$((ep + ef)) scripts, minimum $min_examples"; ef=$((ef + 1))
fi

repo_after=$(git status --porcelain --untracked-files=all 2>/dev/null)
if [ "$repo_before" != "$repo_after" ]; then
  cf=$((cf + 1)); problem core "the tests left files in the repository: $(diff <(echo "$repo_before") <(echo "$repo_after") | grep '^>' | head -5 | tr '\n' ' ')"
fi

echo "core: $cp passed, $cf failed, $cs allowed skips; api: $ap passed, $af failed, $as allowed skips; examples: $ep passed, $ef failed"
for p in ${problems[@]+"${problems[@]}"}; do echo "  failed check: $p"; done
echo "$((cp + ap + ep)) passed, $((cf + af + ef)) failed"
[ $((cf + af + ef)) -eq 0 ]
