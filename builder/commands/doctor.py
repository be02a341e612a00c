"""``lmi-build doctor``: what this machine has for building, assembling and testing, and how to get the rest."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

NAME = "doctor"
HELP = "check the tools each assembler and the tests need"
DESCRIPTION = (
    "Checks: Docker engine (for --assembler docker and the smoke test), the built-in registry client "
    "(--assembler registry needs no external binary), Debian docker-registry and htpasswd (tests), and "
    "optional crane (the third-party image validator of the integration tests, built there from the Go "
    "module proxy when missing, and the bench comparison row). Prints a table on stderr and JSON on stdout; exit 0 "
    "always (missing optional tools are not errors)."
)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--registry", help="HOST[:PORT]: also check that this registry answers /v2/")


def _docker() -> tuple[bool, str]:
    from builder.engine import engine_version

    version, why = engine_version(timeout=5)
    if version is None:
        return False, f"no engine ({why}); start dockerd or set DOCKER_HOST"
    return True, f"engine {version}"


def run(args: argparse.Namespace) -> int:
    import requests

    from builder import console

    checks: dict[str, dict[str, object]] = {}
    ok, detail = _docker()
    checks["docker"] = {"ok": ok, "detail": detail, "needed_for": "--assembler docker, smoke"}
    checks["registry-client"] = {"ok": True, "detail": f"built in (requests {requests.__version__})",
                                 "needed_for": "--assembler registry"}
    reg = shutil.which("docker-registry") or ("/usr/bin/docker-registry" if os.path.exists("/usr/bin/docker-registry")
                                               else None)
    checks["docker-registry"] = {"ok": bool(reg), "detail": reg or "apt-get install docker-registry",
                                 "needed_for": "registry tests, bench"}
    htp = shutil.which("htpasswd")
    checks["htpasswd"] = {"ok": bool(htp), "detail": htp or "apt-get install apache2-utils",
                          "needed_for": "auth registry tests"}
    crane = os.environ.get("LMI_BENCH_CRANE") or os.environ.get("LMI_TEST_CRANE") or shutil.which("crane")
    checks["crane"] = {"ok": bool(crane), "optional": True,
                       "detail": crane or "optional: go install github.com/google/go-containerregistry/cmd/crane@v0.22.1",
                       "needed_for": "crane validate in the integration tests (built once from the Go proxy "
                                     "when Go is there) and the bench comparison row"}
    if args.registry:
        from builder.diagnostics import BuilderError
        from builder.registry.client import RegistryClient

        try:
            RegistryClient(args.registry, None, stage="doctor").ping()
            checks["target-registry"] = {"ok": True, "detail": f"{args.registry} answers /v2/"}
        except BuilderError as exc:
            checks["target-registry"] = {"ok": False, "detail": str(exc)}
    for name, c in checks.items():
        mark = "ok" if c["ok"] else ("--" if c.get("optional") else "MISSING")
        console.info(f"{mark:>8}  {name:<16} {c['detail']}")
    sys.stdout.write(json.dumps(checks) + "\n")
    return 0
