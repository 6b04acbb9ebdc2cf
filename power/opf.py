"""Command line AC-OPF: ``python -m power.opf [CASE.m] [--json out.json]``.

Prints status, objective ($/h), IPOPT iterations and time; without a case it
solves the embedded 3-bus example (``power.cases.CASE3_M``).  Exit status 0
when IPOPT reports success.
"""

from __future__ import annotations

import sys

from nncas.apps.cli import BAD_INPUT, ArgumentParser, fail, run_main
from nncas.apps.storage import check_output_path
from power.acopf import AcOpf
from power.cases import case3
from power.matpower import read_matpower
from power.results import report


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m power.opf", description="AC optimal power flow with IPOPT")
    parser.add_argument("case", nargs="?", help="MATPOWER .m case (default: embedded 3-bus case)")
    parser.add_argument("--json", help="write the solution here (atomically)")
    args = parser.parse_args(argv)
    try:
        if args.json:
            check_output_path(args.json, "--json")
        net = read_matpower(args.case) if args.case else case3()
    except BAD_INPUT as err:
        return fail(parser, err, args.debug)
    return report(AcOpf(net).solve(), args.json)


if __name__ == "__main__":
    sys.exit(run_main(main))
