#!/usr/bin/env bash
# Installs what gauntlet's build, demo stack and tests need on a fresh Debian machine,
# and builds the demo stack's Docker images when a Docker engine is reachable.
# Idempotent: a second run only checks. Used by the README's commands and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# The chaos tests build a tiny static C service (cc -static needs libc's static archive).
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
dpkg -s libc6-dev >/dev/null 2>&1 || need_apt+=(libc6-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} (Debian packages)"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# Debian's package starts a system redis on 6379; gauntlet starts its own on other ports.
command -v redis-server >/dev/null || { echo "setup: redis-server is still missing" >&2; exit 1; }

# 5000 virtual users need 5000+ sockets on each side of loopback.
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt 12000 ]; then
  echo "setup: warning: open-files hard limit is $hard; the 5000-user test needs about 12000" >&2
fi

if [ "${GAUNTLET_SKIP_DOCKER:-0}" != 1 ] && [ -x docker/build.sh ]; then
  if docker info >/dev/null 2>&1; then
    docker/build.sh
  elif [ "${CI:-}" = true ]; then
    echo "setup: the Docker engine is not reachable (docker info failed); CI needs it for the docker backend tests" >&2
    exit 1
  else
    echo "setup: Docker engine not reachable; docker images not built (docker tests will say so)" >&2
  fi
fi
