"""The `sluiceway` command."""

from __future__ import annotations

import argparse
import logging
import sys

from sluiceway.errors import SluicewayError

log = logging.getLogger("sluiceway")


def _cmd_jars_fetch(args: argparse.Namespace) -> int:
    from sluiceway import jars

    for path in jars.fetch_jars():
        print(f"  {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sluiceway", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    jars_p = sub.add_parser("jars", help="the pinned JVM jars")
    jars_sub = jars_p.add_subparsers(dest="jars_command", required=True)
    jars_sub.add_parser("fetch", help="fetch and verify the pinned jars into the cache").set_defaults(
        func=_cmd_jars_fetch
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except SluicewayError as exc:
        print(f"sluiceway: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
