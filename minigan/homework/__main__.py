"""python -m minigan.homework start DIR | check DIR [PART ...] [--verbose] [--time-limit S]

    start DIR         write a fresh homework folder (never over a learner's existing files,
                      nor into a train_mnist.py run's folder)
    check DIR         grade every part and print the scoreboard; exit status 0 once all pass,
                      1 while any fails, 2 for a usage error
    check DIR 2 3     grade parts 2 and 3 only

A folder started before parts 11-14 (or 15-18) existed is graded on the parts it has: the
others are shown as not in this folder, and count neither for nor against the total or the exit
status.

The parts run in a child process, one after another (minigan/homework/isolate.py); a part that
takes longer than --time-limit seconds fails, and a part that hangs, exits or crashes ends its
child: a fresh one grades the parts left.
"""

import sys
import traceback
from pathlib import Path

from minigan import files, rules, rundir, settings
from minigan.homework import grader, skeleton
from minigan.homework.checks import HINTS
from minigan.homework.parts import FILES, PARTS

PROG = "python -m minigan.homework"


class UsageError(Exception):
    """Bad input: the message says what to do; the command exits with status 2."""


MAX_TIME_LIMIT = 86_400  # a day a part: ample, and far below the ~9.2e9 s the timeouts can take


def refuse_empty(command, folder, what):
    """Path("") is the current folder: start would write, and check grade, wherever one is.
    A name too long for the file system is refused as such, not as a file or a missing folder."""
    if not folder:
        raise UsageError(f'{command} "": an empty folder name; {what}, like `{PROG} {command} hw`')
    problem = rules.too_long(command, folder)
    if problem:
        raise UsageError(problem)


def start(folder):
    refuse_empty("start", folder, "name a folder for the homework")
    if not settings.path_ok(str(folder), "out"):  # the folder, or one above it, is a file
        raise UsageError(f"{folder} is a file, or inside one, not a folder: choose a folder name "
                         "for the homework")
    folder = Path(folder)
    texts = skeleton.files()  # generate before writing anything: a failure leaves no half folder
    try:  # never over a learner's work, nor into a train_mnist.py run's folder
        rundir.refuse_taken(folder, flag=None, writes=texts,
                            hint=f", or grade the homework there with `{PROG} check {folder}`")
    except rundir.RunError as e:
        raise UsageError(str(e)) from None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            files.write_text(folder / name, text)
    except OSError as e:
        raise UsageError(f"cannot write the homework into {folder} ({e.strerror or e}). "
                         + files.write_fix(e, folder / "README.md", "start in another folder")
                         ) from None
    print(f"homework written to {folder}/: {', '.join(texts)}")
    print(f"next: open {folder}/losses.py (part 1), then run  {PROG} check {folder}")


def check_folder(folder):
    refuse_empty("check", folder, "name your homework folder")
    folder = Path(folder)
    if not settings.path_ok(str(folder), "folder"):
        raise UsageError(f"no homework folder at {folder}: create one with `{PROG} start "
                         f"{folder}`")
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise UsageError(f"{folder} is missing {', '.join(missing)}: not a homework folder? "
                         f"Create one with `{PROG} start NEW_FOLDER`")


def parse_parts(values):
    numbers = []
    is_part = settings.integer(1, len(PARTS))[0]  # the rule every command's numbers use
    for v in values:
        number = rules.whole_number(v)  # None for "x", "-1", "²"
        if not is_part(number):
            raise UsageError(f"no part {v!r}: parts are numbered 1 to {len(PARTS)}")
        numbers.append(number)
    return sorted(set(numbers)) or None


def scoreboard(folder, results, verbose=False):
    """The table the learner sees: one line per part, what failed and the hint below it."""
    lines = [f"minigan homework in {folder}", "",
             f"{'part':>4}  {'what':<22} {'lessons':<42} {'result':<18} points"]
    for r in results:
        p = r.part
        points = " -" if r.status == grader.ABSENT else f"{r.points:>2}"
        lines.append(f"{p.number:>4}  {p.title:<22} {', '.join(p.lessons):<42} {r.status:<18} "
                     f"{points}/{p.points}")
        if r.status in ("failed", grader.ABSENT):
            lines.append(f"{'':6}{r.check}: {r.message}".replace("\n", "\n" + " " * 6))
            for h in r.hints:
                lines.append(f"{'':6}hint: {HINTS[h]}")
            if verbose and r.error is not None:
                tb = r.error if isinstance(r.error, str) else "".join(
                    traceback.format_exception(r.error))
                lines.append(" " * 6 + tb.rstrip().replace("\n", "\n" + " " * 6))
        if r.printed:  # fenced, so that it cannot pass for the scoreboard
            lines.append(f"{'':6}your code printed:")
            lines += [f"{'':6}| {line}" for line in r.printed.splitlines()]
    has = [r for r in results if r.status != grader.ABSENT]
    got = sum(r.points for r in has)
    out_of = sum(r.part.points for r in has)  # out of the parts this folder has
    notes = []
    if len(results) < len(PARTS):
        notes.append(f"parts {', '.join(str(r.part.number) for r in results)}")
    if len(has) < len(results):
        notes.append("not in this folder: " + ", ".join(str(r.part.number) for r in results
                                                         if r.status == grader.ABSENT))
    lines += ["", f"total {got}/{out_of}" + (f" ({'; '.join(notes)})" if notes else "")]
    if got < out_of and not verbose and any(r.error is not None for r in results):
        lines.append("(--verbose shows the full tracebacks)")
    return "\n".join(lines)


# --time-limit: a number of seconds in (0, MAX_TIME_LIMIT]
TIME_LIMIT = ((lambda v: rules.number(0, lo_open=True)[0](v) and v <= MAX_TIME_LIMIT),
              f"a number of seconds above 0 and at most {MAX_TIME_LIMIT:,} (a day)")


def main(argv=None):
    p = rules.Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("start", help="write a fresh homework folder")
    s.add_argument("folder")
    c = sub.add_parser("check", help="grade a homework folder")
    c.add_argument("folder")
    c.add_argument("parts", nargs="*", metavar="PART", help="part numbers (default: all)")
    c.add_argument("--verbose", action="store_true", help="show full tracebacks")
    c.add_argument("--time-limit", type=rules.typed(float, "time_limit", TIME_LIMIT,
                                                    grader.TIME_LIMIT),
                   default=grader.TIME_LIMIT, metavar="SECONDS",
                   help=f"seconds each part may run (default {grader.TIME_LIMIT})")
    # argparse takes the parts only before a flag (check hw --verbose 2 3 leaves 2 3 over), and
    # its parse_intermixed_args does not take subcommands: the words left over are parts too
    args, extra = p.parse_known_args(argv)
    flags = [a for a in extra if a.startswith("-")]
    if extra and (args.command != "check" or flags):
        p.error(f"unrecognized arguments: {' '.join(flags or extra)}")
    if extra:
        args.parts += extra  # parse_parts checks them as it checks the others
    try:
        if args.command == "start":
            start(args.folder)
            return 0
        numbers = parse_parts(args.parts)
        rules.check("time_limit", args.time_limit, TIME_LIMIT, grader.TIME_LIMIT)
        check_folder(args.folder)
    except (UsageError, rules.ConfigError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    results = grader.grade(args.folder, numbers, args.time_limit)
    print(scoreboard(args.folder, results, args.verbose))
    return 0 if passed(results) else 1


def passed(results):
    """Every part graded passed, and there was one: a folder's missing parts do not count."""
    has = [r for r in results if r.status != grader.ABSENT]
    return bool(has) and all(r.status == "passed" for r in has)


if __name__ == "__main__":
    sys.exit(main())
