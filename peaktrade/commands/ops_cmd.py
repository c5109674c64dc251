from __future__ import annotations

from peaktrade.commands import print_json, warn


def health(args) -> int:
    from peaktrade import health as H

    try:
        result = H.run(getattr(args, "config", None))
    except Exception as exc:  # Nagios wants UNKNOWN (3) when the check itself could not run
        if not args.nagios:
            raise
        print(f"PEAKTRADE HEALTH UNKNOWN - {H.core.escape(exc.__class__.__name__)}: {H.core.escape(exc)}")
        return H.core.NAGIOS_UNKNOWN
    for problem in result.problems:
        warn(problem)
    if args.json:
        print_json(result.doc)
    else:
        for line in H.text_lines(result.doc, nagios=args.nagios):
            print(line)
    return H.exit_code(result.overall, args.nagios)
