#!/usr/bin/env bash
# Prepare a fresh Debian (bookworm) machine for lmi-builder: the system packages it uses,
# nox, and a running Docker engine. Idempotent: installs only what is missing, starts
# dockerd only when no socket answers. Needs root (or sudo) for apt and dockerd.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils)
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "bootstrap: installing ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

export PATH="$HOME/.local/bin:$PATH"
if ! command -v nox >/dev/null 2>&1; then
  echo "bootstrap: installing nox" >&2
  # pip where the interpreter allows it (pyenv, venv); Debian's own python3 is externally managed
  # (PEP 668), so there nox comes from Debian's package.
  if ! { python3 -m pip install -q --user nox 2>/dev/null || python3 -m pip install -q nox 2>/dev/null; }; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nox python3-venv >/dev/null
  fi
  command -v nox >/dev/null 2>&1 || { echo "bootstrap: could not install nox" >&2; exit 1; }
fi

# A Docker engine: reuse one that answers, else start the Debian dockerd, kept local
# (no bridge, no iptables: containers use host networking).
if ! docker info >/dev/null 2>&1; then
  echo "bootstrap: starting dockerd" >&2
  $SUDO mkdir -p /var/log
  $SUDO setsid nohup dockerd --bridge=none --iptables=false >/var/log/lmi-build-dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "bootstrap: dockerd did not start; see /var/log/lmi-build-dockerd.log" >&2; tail -20 /var/log/lmi-build-dockerd.log >&2; exit 1; }
fi
echo "bootstrap: ready (docker $(docker version --format '{{.Server.Version}}' 2>/dev/null))" >&2
