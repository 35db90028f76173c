#!/usr/bin/env bash
# Publishes fmriglm ReadyToRun (precompiled, as a release ships it) and runs the first-level benchmark with it:
# end to end (read, mask, design, AR(1) fit, 4 contrasts, write) against reading the input alone, and peak memory.
# Extra arguments go to `fmriglm bench first-level` (e.g. --dir /tmp/fmriglm-bench to keep the generated run).
set -euo pipefail
cd "$(dirname "$0")/.."
case "$(uname -m)" in
  x86_64) rid=linux-x64 ;;
  aarch64 | arm64) rid=linux-arm64 ;;
  *) echo "bench-first-level.sh: no runtime identifier known for $(uname -m)" >&2; exit 2 ;;
esac
dotnet tool restore >/dev/null
dotnet paket restore >/dev/null
dotnet publish src/Glm.Cli -c Release -r "$rid" --self-contained false -p:PublishReadyToRun=true \
  -o out/fmriglm-readytorun >/dev/null
dotnet out/fmriglm-readytorun/fmriglm.dll bench first-level "$@"
