"""``lmi-build``: the command line.

Each sub-command lives in its own module under ``builder/commands/`` and exposes
``NAME``, ``HELP``, ``configure(parser)`` and ``run(args) -> int``; this module only
discovers them, parses, and turns every failure into a message and an exit code
(0 ok, 1 failure, 2 usage, 130 interrupted), never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from builder import __version__, commands
from builder.console import error, info
from builder.diagnostics import BuilderError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 on usage errors; keep it, but one line
        self.print_usage(sys.stderr)
        from builder.console import printable  # argparse echoes the user's value

        sys.stderr.write(f"{self.prog}: error: {printable(message, newlines=False)}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lmi-build",
        description=(
            "Build model-specific AWS LMI (DJL Serving) images from one YAML recipe: "
            "validate -> fetch -> compile -> bake -> smoke-test -> publish."
        ),
        epilog="Run 'lmi-build COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"lmi-builder {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in _command_modules():
        p = sub.add_parser(module.NAME, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP))
        module.configure(p)
        p.set_defaults(_run=module.run)
    return parser


def _command_modules() -> list:
    found = []
    for info_ in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info_.name.startswith("_"):
            continue
        module = importlib.import_module(f"builder.commands.{info_.name}")
        if hasattr(module, "NAME") and hasattr(module, "run"):
            found.append(module)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except BuilderError as exc:
        from builder.diagnostics import DiagnosticError

        if isinstance(exc, DiagnosticError):
            info(exc.describe())
        else:
            error(exc.describe())
        return exc.exit_code
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except BrokenPipeError:
        # `lmi-build plan recipes/ | head`: the reader went away; that is not an error of ours. Point
        # stdout at devnull so the interpreter's final flush does not print "Exception ignored ...".
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command killed by SIGPIPE
    except Exception as exc:
        # The last line of defence for what the stages did not turn into a BuilderError: a
        # filesystem, network or engine error is the environment's fault and gets one line, not a
        # traceback. Anything else is a bug in lmi-build and keeps its traceback.
        if not _environment_error(exc):
            raise
        text = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, OSError) and exc.errno is not None:  # the path and a hint, not only [Errno 28]
            from builder.atomic import os_error_message

            message, hint = os_error_message(exc)
            text = message + (f"\n  hint: {hint}" if hint else "")
        error(f"{args.command}: {text}")  # the command is the stage the user ran
        return 1


def _environment_error(exc: BaseException) -> bool:
    if isinstance(exc, OSError):  # includes requests' RequestException
        return True
    docker_errors = sys.modules.get("docker.errors")
    return docker_errors is not None and isinstance(exc, docker_errors.DockerException)


if __name__ == "__main__":
    sys.exit(main())
