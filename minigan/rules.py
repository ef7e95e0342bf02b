"""The vocabulary of settings: a rule is a pair (check(value) -> bool, the allowed values in
words), and one message names the flag, the value, what is allowed and the default:

    --batch-size 0: not allowed; use an integer >= 1 (default: 64).

minigan/settings.py writes every command's settings with these rules. The commands' parsers
use them too: ``typed`` gives a value of the wrong type ("--epochs abc") the same message,
and ``layer_widths`` a list of widths that is not one ("--g-hidden 32,"); ``path_arg``
refuses an empty path and expands ``~`` once, where the value is read, and ``Parser`` prints
such a message as one line.
"""

import argparse
import errno
import math
import os
import re
from pathlib import Path

from minigan import rundir


class ConfigError(rundir.RunError):
    """A setting outside its allowed values; the message names the flag, the value, the range."""


def integer(lo, hi=None):
    """A rule: an int (not a bool) with lo <= value (<= hi)."""
    allowed = f"an integer >= {lo}" if hi is None else f"an integer from {lo} to {hi}"
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v
            and (hi is None or v <= hi)), allowed


def number(lo, hi=None, lo_open=False):
    """A rule: a finite int or float with lo <= value < hi (lo < value if lo_open)."""
    def check(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        if isinstance(v, float) and not math.isfinite(v):  # NaN, inf
            return False
        return (lo < v if lo_open else lo <= v) and (hi is None or v < hi)
    if hi is None:
        return check, f"a number {'>' if lo_open else '>='} {lo}"
    return check, f"a number in {'(' if lo_open else '['}{lo}, {hi})"


def number_from_to(lo, hi):
    """A rule: a finite int or float with lo <= value <= hi (both ends allowed)."""
    ok = number(lo)[0]
    return (lambda v: ok(v) and v <= hi), f"a number from {lo} to {hi}"


def one_of(*choices):
    return (lambda v: isinstance(v, str) and v in choices), "one of " + ", ".join(choices)


def explained(rule, words):
    return rule[0], words  # the same check, with other words for what is allowed


SEED = integer(0, 2**32 - 1)  # what NumPy's and CuPy's generators take
# The most samples a scoring draws (minigan.evaluate's -n, train_mnist.py's --eval-samples):
# a million images are 784 MB of pixels.
MAX_SAMPLES = 1_000_000
MAX_WIDTH = 100_000  # a layer wider than this would not fit in memory anyway


def widths():
    """A rule: a non-empty tuple of layer widths."""
    ok = integer(1, MAX_WIDTH)[0]
    return (lambda v: isinstance(v, tuple) and len(v) > 0 and all(ok(w) for w in v)), (
        f"comma-separated layer widths, each an integer from 1 to {MAX_WIDTH}, like 256,512,1024")


def path_ok(value, want):
    """Whether a path setting can be used: text without NUL, and "" (the default) or, with want
    "folder" or "file", one that exists; with want "out", a folder made if missing, so that
    nothing above it may be a file."""
    if not isinstance(value, str) or "\0" in value:
        return False
    try:
        path = Path(value)  # "~" was expanded where the value was read (path_arg, saved_config)
        if not value or want == "out":  # the first folder up the path that exists is a folder
            return next((p.is_dir() for p in (path, *path.parents) if p.exists()), True)
        return path.is_dir() if want == "folder" else path.is_file()
    except (OSError, ValueError):  # a name too long
        return False


def folder_problem(name, path):
    """Why the file path cannot be written for want of its folder, or None: the folder is
    missing, or a file stands where a folder of the path should be."""
    path = Path(path)
    for above in (path.parent, *path.parent.parents):
        if above.is_dir():
            if above == path.parent:
                return None
            return f"{flag(name)} {path}: the folder {path.parent} does not exist; create it first"
        if above.exists():
            return f"{flag(name)} {path}: {above} is a file, not a folder; name a file in a folder"
    return None


def suffix_problem(path, suffixes):
    """None if the file name path ends in one of suffixes (".npy", ".png", ...), else what to do,
    as words: "name a file ending in .npy or .png". Every command compares a suffix here, and
    exactly: minigan's names are lower case, as its readers expect (train_mnist.py --images
    takes x.npy, not x.NPY), and a name that differs only in case is told so."""
    name = str(path)
    if name.endswith(tuple(suffixes)):
        return None
    fix = f"name a file ending in {' or '.join(suffixes)}"
    near = next((s for s in suffixes if name.lower().endswith(s)), None)
    return fix + (f", in lower case: {name[:-len(near)]}{near}" if near else "")


def folder(want_dir):
    return (lambda v: path_ok(v, "folder" if want_dir else "out")), (
        "an existing folder, or empty to search" if want_dir else
        "a folder name (created if missing), not a file, or empty for runs/<time>")


def flag(name):
    """The flag of a setting: --batch-size for batch_size; a name given as a flag ("-n") as is."""
    return name if name.startswith("-") else "--" + name.replace("_", "-")


def show(value):
    """A setting's value as the user would type it (short, and safe for any value)."""
    if isinstance(value, str) and not value:
        return '""'
    try:
        if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
            value = ",".join(map(str, value))
        text = repr(value) if isinstance(value, str) and not value.isprintable() else str(value)
    except ValueError:  # an int too long to print
        text = f"a {type(value).__name__} too long to print"
    # a long value keeps both ends: a path's end names the file, the part a reader looks for
    return text if len(text) <= 80 else text[:38] + "..." + text[-39:]


def message(name, value, rule, default=None):
    """The one message every command prints for a value its rule refuses."""
    tail = "" if default is None else f" (default: {show(default)})"
    return f"{flag(name)} {show(value)}: not allowed; use {rule[1]}{tail}."


def check(name, value, rule, default=None):
    """Raise ConfigError unless value passes rule: the one message every command prints."""
    if not rule[0](value):
        raise ConfigError(message(name, value, rule, default))


# ---- reading flags: the same messages for what the command line gives ---------------------------


def whole_number(text):
    """The int that text writes in the digits 0-9 ("14" -> 14), or None ("x", "-1", "1.5", "").
    Not str.isdigit alone: it accepts "²", which int() refuses."""
    return int(text) if text.isascii() and text.isdigit() else None


def typed(kind, name, rule, default=None):
    """An argparse type: text -> kind (int or float), and for text that is not one ("abc",
    "1.5" for an int, ""), the rule's message instead of argparse's "invalid int value"."""
    def convert(text):
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(message(name, text, rule, default)) from None
    return convert


def layer_widths(name, rule, default=None):
    """An argparse type for a flag of layer widths: "256,512,1024" -> (256, 512, 1024). Text
    that is not such a list ("32,", "", "a,b") gets the rule's message, as typed gives a number
    flag's ("--g-hidden 32,: not allowed; use comma-separated layer widths, ..."); the widths'
    range is the rule's to check (validate)."""
    def convert(text):
        try:
            return tuple(int(v) for v in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(message(name, text, rule, default)) from None
    return convert


def typed_from(rules, defaults):
    """``typed`` for a command whose rules and defaults are dicts by setting name: the argparse
    type maker ``given_as(kind, name)``, whose message for text that is no number ("--epochs
    abc") is the rule's, with the default."""
    return lambda kind, name: typed(kind, name, rules[name], defaults[name])


# What each path flag takes, for the message when it is given empty (path_arg).
PATH_FLAGS = {
    "data_dir": "name a folder that holds MNIST, or leave the flag out to search",
    "images": "name a .npy file of uint8 images (N, 28, 28), or leave the flag out for MNIST",
    "out": "name a folder, or leave the flag out for the default",
    "homework": "name a folder written by `python -m minigan.homework start`, or leave the "
                "flag out",
}


def too_long(shown, text):
    """The message for a path (given as text, after the flag or argument ``shown``) with a name
    too long for the file system, or None. Every command says so in these words, rather than
    that the path is missing or a file: a missing path is the command's own checks' to judge."""
    try:
        os.stat(os.path.expanduser(text))
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            return (f"{shown} {show(text)}: the name is too long for the file system (most "
                    "allow 255 characters in each name of a path); use a shorter one.")
    except ValueError:  # a NUL byte (not from a shell); the rules refuse it
        pass
    return None


def path_arg(name, what=None, positional=False):
    """An argparse type for a path flag (or, positional, an argument named name in the usage
    line): refuses an empty path (which would otherwise mean "not given", or the current folder)
    and a name too long for the file system (too_long), each with a message that says so;
    expands "~" here, once, so that every check and every use sees one path."""
    what = what or PATH_FLAGS[name]
    shown = name if positional else flag(name)

    def convert(text):
        if not text:
            raise argparse.ArgumentTypeError(f"{shown} '': an empty path; {what}.")
        problem = too_long(shown, text)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return os.path.expanduser(text)
    return convert


def said_of(path, problem):
    """A problem (an exception or text) said of path, which it names once: "run: no config.json
    there", where the problem's own message may already start with the path."""
    text = str(problem)
    return text if text.startswith((f"{path}:", f"{path} ")) else f"{path}: {text}"


QUOTES = "'\""  # around a value in argparse's messages


class Parser(argparse.ArgumentParser):
    """argparse's parser, which prints a message that names its own flag (the rules' messages,
    from typed and path_arg) as one line, without the usage block and argparse's "argument
    --epochs:" in front; a flag's value outside its choices, or not a number, in the rules'
    words too ("--device tpu: not allowed; use one of cpu, gpu."); other errors as argparse
    does. Exit status 2 either way."""

    def error(self, message):
        own = re.fullmatch(r"argument ([^:/ ]+)[^:]*: (.*)", message, re.S)
        if own and own.group(2).startswith(own.group(1) + " "):
            self.exit(2, f"{self.prog}: error: {own.group(2)}\n")
        # argparse: "argument --device: invalid choice: 'tpu' (choose from 'cpu', 'gpu')", its
        # quotes as repr or str by Python version; a subcommand's ("argument command") stays
        choice = re.fullmatch(r"argument (-[^:/ ]+)[^:]*: invalid choice: (.*) \(choose from "
                              r"(.*)\)", message, re.S)
        if choice:
            name, value, allowed = choice.groups()
            allowed = ", ".join(c.strip(" " + QUOTES) for c in allowed.split(","))
            self.exit(2, f"{self.prog}: error: {name} {value.strip(QUOTES)}: not allowed; use "
                         f"one of {allowed}.\n")
        # a plain type=int or type=float (a script's flag without a rule; typed says the range)
        bad_type = re.fullmatch(r"argument (-[^:/ ]+)[^:]*: invalid (int|float) value: (.*)",
                                message, re.S)
        if bad_type:
            name, kind, value = bad_type.groups()
            allowed = "an integer" if kind == "int" else "a number"
            self.exit(2, f"{self.prog}: error: {name} {value.strip(QUOTES)}: not allowed; use "
                         f"{allowed}.\n")
        super().error(message)


def physical_memory():
    """This machine's memory in bytes, or None where the system does not say (Windows)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits_in_memory(need, what, advice):
    """Raise ConfigError if need bytes (a lower bound) exceed this machine's memory. Checked
    before anything is written: where the system promises memory it does not have (Linux's
    overcommit), NumPy's allocation succeeds and the process is killed later, with no message
    and its folder half made; elsewhere NumPy raises MemoryError, which the commands catch too."""
    have = physical_memory()
    if have is not None and need > have:
        raise ConfigError(f"{what} do not fit in memory: they need at least {need / 2**30:,.1f} "
                          f"GiB, and this machine has {have / 2**30:,.1f} GiB; {advice}")
