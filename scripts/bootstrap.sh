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

# nox where every shell finds it: its own venv under /opt, linked into /usr/local/bin (on the
# login PATH of root and of every user on Debian). Not `pip install --user`: ~/.local/bin is on
# PATH only from the next login, so `bootstrap.sh && nox ...` in the same shell would not find it.
NOX_VENV=/opt/lmi-build/nox
if ! command -v nox >/dev/null 2>&1; then
  echo "bootstrap: installing nox into $NOX_VENV (linked as /usr/local/bin/nox)" >&2
  $SUDO rm -rf "$NOX_VENV"
  if $SUDO python3 -m venv "$NOX_VENV" && $SUDO "$NOX_VENV/bin/python" -m pip install -q --disable-pip-version-check nox; then
    $SUDO ln -sf "$NOX_VENV/bin/nox" /usr/local/bin/nox
  else
    # No PyPI: Debian's own package puts nox in /usr/bin.
    $SUDO rm -rf "$NOX_VENV"
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
