#!/usr/bin/env bash
# Staging vs rsync, rollback vs ln -sfn, and proxy overhead vs nginx (wrk); updates bench/README.md. Usage: bench/run.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v rsync >/dev/null || missing+=(rsync)
[ -x /usr/bin/time ] || missing+=(time)
command -v wrk >/dev/null || missing+=(wrk)
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
dotnet build bench/Cutover.Bench -c Release -v q -nologo
dotnet bench/Cutover.Bench/bin/Release/net10.0/Cutover.Bench.dll "${1:-5}"
