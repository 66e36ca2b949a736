#!/usr/bin/env bash
# Staging vs rsync, rollback vs ln -sfn, proxy overhead vs nginx, HAProxy and Caddy (wrk), blue-green switch, the migration linter vs
# squawk, TLS termination vs nginx (wrk over https), the agent's upgrade vs a restart vs nginx -s reload, the metrics' cost, and command start-up
# (status, releases, rollback, --version) vs pm2 and ln -sfn; updates bench/README.md. Usage: bench/run.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v rsync >/dev/null || missing+=(rsync)
[ -x /usr/bin/time ] || missing+=(time)
command -v wrk >/dev/null || missing+=(wrk)
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
[ -x /usr/sbin/haproxy ] || missing+=(haproxy)
[ -x /usr/bin/caddy ] || missing+=(caddy)
command -v openssl >/dev/null || missing+=(openssl)
# The TLS benchmark compiles a small LD_PRELOAD shim that turns wrk's TLS session resumption off.
command -v cc >/dev/null || missing+=(gcc)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# squawk's npm package brings its native binary through an optional per-platform dependency.
squawk=bench/.tools/node_modules/@squawk-cli/linux-x64/bin/squawk
if [ ! -x "$squawk" ]; then
  command -v npm >/dev/null || { echo "npm is needed to install squawk-cli for the lint benchmark" >&2; exit 1; }
  npm install --prefix bench/.tools --no-audit --no-fund --silent squawk-cli@2.66.0
fi
# PM2, the peer of the start-up benchmark (`pm2 ls`, `pm2 reload`), from the npm registry like squawk.
if [ ! -x bench/.tools/node_modules/.bin/pm2 ]; then
  npm install --prefix bench/.tools --no-audit --no-fund --silent pm2@7.0.4
fi
dotnet build bench/Cutover.Bench -c Release -v q -nologo
dotnet bench/Cutover.Bench/bin/Release/net10.0/Cutover.Bench.dll "${1:-5}"
dotnet bench/Cutover.Bench/bin/Release/net10.0/Cutover.Bench.dll lint "${1:-5}"
dotnet bench/Cutover.Bench/bin/Release/net10.0/Cutover.Bench.dll tls "${1:-5}"
dotnet bench/Cutover.Bench/bin/Release/net10.0/Cutover.Bench.dll upgrade "${1:-5}"
dotnet bench/Cutover.Bench/bin/Release/net10.0/Cutover.Bench.dll metrics "${1:-5}"
dotnet bench/Cutover.Bench/bin/Release/net10.0/Cutover.Bench.dll startup 20
