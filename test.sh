#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine or a developer's: installs what the tests start for real
# (nginx, haproxy, php-fpm, PostgreSQL, dockerd, sshd, pebble, chromium, and the small tools they call), builds, and runs every test. Nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
[ -x /usr/sbin/haproxy ] || missing+=(haproxy)
compgen -G "/usr/sbin/php-fpm*" >/dev/null || missing+=(php-fpm)
command -v git >/dev/null || missing+=(git)
command -v flock >/dev/null || missing+=(util-linux)
command -v tar >/dev/null || missing+=(tar)
command -v node >/dev/null || missing+=(nodejs)
command -v curl >/dev/null || missing+=(curl)
# InitDeployTests run the build hooks `cutover init` writes: npm ci for Node, composer install for Laravel.
command -v npm >/dev/null || missing+=(npm)
command -v composer >/dev/null || missing+=(composer)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v setpriv >/dev/null || missing+=(util-linux)
# The container tests start their own dockerd and import a busybox httpd image (no registry). The static busybox
# is copied into the image, so the dynamic `busybox` package would not do.
command -v dockerd >/dev/null || [ -x /usr/sbin/dockerd ] || missing+=(docker.io)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null || missing+=(openssh-client)
# The ACME tests obtain certificates from a real ACME server (pebble, with pebble-challtestsrv as its DNS).
command -v pebble >/dev/null || missing+=(pebble)
# DeployReportTests render the deploy report with headless Chromium and decode the screenshot.
command -v chromium >/dev/null || missing+=(chromium)
# ReadmeMetricsSectionTests check the README's scrape config and alert rules with Prometheus' promtool.
command -v promtool >/dev/null || missing+=(prometheus)
# FdPassingTests read the fd-passing wire format with Python's socket.recv_fds, an independent reader.
command -v python3 >/dev/null || missing+=(python3)
# NativeBuildTests publish the Native AOT cutover (README's install line): clang links it, against zlib.
command -v clang >/dev/null || missing+=(clang)
dpkg -s zlib1g-dev >/dev/null 2>&1 || missing+=(zlib1g-dev)
# TopCommandTests run `cutover top` in a real terminal: a detached tmux session, read with capture-pane.
command -v tmux >/dev/null || missing+=(tmux)

if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # Installing nginx, haproxy, php-fpm or docker.io must not start system services (port 80, the system dockerd).
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$made_policy" ] || $sudo rm -f /usr/sbin/policy-rc.d
fi

# The benchmarks are not run here (they measure, on a quiet machine), but they must keep compiling against the product.
dotnet build bench/Cutover.Bench -c Release -v quiet -nologo

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
set +e
dotnet test tests/Cutover.Tests/Cutover.Tests.csproj -c Release \
  --logger "console;verbosity=normal" --logger "trx;LogFileName=results.trx" --results-directory "$results"
status=$?
set -e

# One closing line that any CI reader understands, from the TRX counters.
trx="$results/results.trx"
# CUTOVER_TEST_RESULTS=DIR keeps the TRX (each test's start and end: how the run was scheduled).
if [ -n "${CUTOVER_TEST_RESULTS:-}" ] && [ -f "$trx" ]; then mkdir -p "$CUTOVER_TEST_RESULTS" && cp "$trx" "$CUTOVER_TEST_RESULTS/"; fi
if [ -f "$trx" ]; then
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  count() { sed -E "s/.* $1=\"([0-9]+)\".*/\1/" <<<"$counters"; }
  passed=$(count passed); failed=$(count failed); total=$(count total); executed=$(count executed)
  skipped=$((total - executed))
  # A CI log is often read from its tail only: the slowest tests (the 30-minute budget) and then every failure,
  # by name with the first lines of its message, come last so they are never cut off.
  python3 - "$trx" <<'PY'
import re, sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
root = ET.parse(sys.argv[1]).getroot()
results = root.findall(".//t:UnitTestResult", ns)
def seconds(r):
    h, m, s = (r.get("duration") or "0:0:0").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)
print("slowest tests:")
for r in sorted(results, key=seconds, reverse=True)[:15]:
    print(f"  {seconds(r):7.1f} s  {r.get('testName')}")
for r in results:
    if r.get("outcome") != "Failed":
        continue
    message = r.find("t:Output/t:ErrorInfo/t:Message", ns)
    text = (message.text or "") if message is not None else ""
    print(f"FAILED {r.get('testName')}")
    for line in text.strip().splitlines()[:6]:
        print(f"    {line[:300]}")
PY
  echo "tests: $passed passed, $failed failed, $skipped skipped"
  if [ "$skipped" != "0" ]; then
    echo "test.sh: $skipped tests did not run; every test must run" >&2
    status=1
  fi
else
  echo "test.sh: no test results were written" >&2
  [ "$status" -ne 0 ] || status=1
fi
exit "$status"
