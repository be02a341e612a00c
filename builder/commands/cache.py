"""``lmi-build cache ls|prune``: what the shared cache holds, and removing what is not used."""

from __future__ import annotations

import argparse
import json
import sys
import time

from builder.commands._args import positive
from builder.paths import cache_dir_arg

NAME = "cache"
HELP = "list or prune the model and compile cache"
DESCRIPTION = ("ls: models (per source), snapshots, compiled engines, with sizes and last use. "
               "prune: remove models and compiled engines unused for --older-than days, then every blob, "
               "snapshot and temporary file nothing refers to, and temporaries a failed or killed writer "
               "left anywhere in the cache more than 10 minutes ago (--dry-run lists only). "
               "--cache-remote s3://bucket/prefix/ (bare: $LMI_BUILD_CACHE_REMOTE) works on the shared S3 "
               "cache instead: prune removes entries unused for --older-than days, then blobs nothing lists "
               "that are older than a day.")


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    ls = sub.add_parser("ls", help="list cache entries")
    ls.add_argument("--format", choices=("table", "json"), default="table")
    pr = sub.add_parser("prune", help="remove unused entries")
    pr.add_argument("--older-than", type=_days, metavar="DAYS",
                    help="also remove models and compile entries not used for DAYS days "
                         "(without it: only what nothing refers to)")
    pr.add_argument("--dry-run", action="store_true", help="list what would be removed")
    for q in (ls, pr):
        q.add_argument("--cache-dir", metavar="DIR", type=cache_dir_arg,
                       help="cache folder (default LMI_BUILD_CACHE or user cache)")
        # never implied by the variable alone: pruning the fleet's cache is asked for by name
        q.add_argument("--cache-remote", nargs="?", const="", type=_remote, metavar="S3_URI",
                       help="the shared S3 cache instead of the local one (no value: $LMI_BUILD_CACHE_REMOTE)")


def _remote(text: str) -> str:
    from builder.artifacts.remote import remote_arg

    return remote_arg(text) if text else ""


_days = positive("days", "30")  # -5 or nan would make every entry (or none) 'old'


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n:.1f} TB"


def run(args: argparse.Namespace) -> int:
    from builder.artifacts.cache import list_items, prune
    from builder.console import console, info, printable
    from builder.paths import cache_dir

    if args.cache_remote is not None:
        return _run_remote(args)
    root = cache_dir(args.cache_dir)
    if args.cache_command == "ls":
        items = list_items(root)
        if args.format == "json":
            sys.stdout.write(json.dumps([i.model_dump(mode="json") for i in items], indent=2) + "\n")
            return 0
        from rich.markup import escape
        from rich.table import Table

        def cell(text: str) -> str:
            return escape(printable(text, newlines=False))

        t = Table(title=cell(str(root)))
        for col in ("kind", "name", "size", "last used", "detail"):
            t.add_column(col)
        now = time.time()
        for i in items:
            # names and details come from the cache (model ids, paths): text, never rich markup
            t.add_row(cell(i.kind), cell(i.name), _human(i.bytes) if i.bytes else "-",
                      f"{(now - i.last_used) / 86400:.1f} d ago", cell(i.detail))
        console().print(t)
        return 0
    removed = prune(root, older_than_days=args.older_than, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for i in removed:
        info(f"{verb} {i.kind} {printable(i.name, newlines=False)} ({_human(i.bytes)})")
    info(f"{verb} {len(removed)} entries, {_human(sum(i.bytes for i in removed))}")
    return 0


def _run_remote(args: argparse.Namespace) -> int:
    import os

    from builder.artifacts.remote import ENV, remote_from
    from builder.console import console, info, printable
    from builder.diagnostics import BuilderError, UsageError

    if not args.cache_remote and not os.environ.get(ENV, "").strip():
        raise UsageError(f"--cache-remote without a value reads {ENV}, which is not set",
                         hint="give the URI: --cache-remote s3://bucket/prefix/")
    remote = remote_from(args.cache_remote or None)
    assert remote is not None
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if args.cache_command == "ls":
            items = remote.items()
        else:
            items = remote.prune(older_than_days=args.older_than, dry_run=args.dry_run)
    except (ClientError, BotoCoreError) as exc:
        raise BuilderError(f"{remote.uri}: {exc}", stage="cache",
                           hint="check the bucket, the AWS credentials/region of this shell and "
                                "AWS_ENDPOINT_URL_S3") from None
    if args.cache_command == "prune":
        verb = "would remove" if args.dry_run else "removed"
        for i in items:
            info(f"{verb} {i.kind} {printable(i.name, newlines=False)} ({_human(i.bytes)})")
        info(f"{verb} {len(items)} objects from {remote.uri}, {_human(sum(i.bytes for i in items))}")
        return 0
    if args.format == "json":
        sys.stdout.write(json.dumps([i.model_dump(mode="json") for i in items], indent=2) + "\n")
        return 0
    from rich.markup import escape
    from rich.table import Table

    def cell(text: str) -> str:
        return escape(printable(text, newlines=False))

    t = Table(title=cell(remote.uri))
    for col in ("kind", "name", "size", "last used", "detail"):
        t.add_column(col)
    now = time.time()
    for i in items:  # names come from a shared bucket: text, never rich markup
        t.add_row(cell(i.kind), cell(i.name), _human(i.bytes) if i.bytes else "-",
                  f"{(now - i.last_used) / 86400:.1f} d ago", cell(i.detail))
    console().print(t)
    return 0
