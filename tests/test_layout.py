"""The house's shape: the main script reads as one training loop, no module grows several jobs,
and the lessons import the library, never the script.

The budgets are the ones the layout was rebuilt to (lessons/06_training_mnist.md reads the
loop): train_mnist.py at most 250 lines, its epoch loop on one screen (60 lines), every module
of the library and of the PyTorch twin at most 450 lines.
"""

import ast
from pathlib import Path

import pytest

from test_lessons import LESSONS, code_blocks

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted([*ROOT.glob("minigan/**/*.py"), *ROOT.glob("reference/*.py")])
SCRIPT = ROOT / "train_mnist.py"


def lines(path):
    return len(path.read_text().splitlines())


def test_the_training_script_fits_its_budget():
    assert lines(SCRIPT) <= 250


def test_the_epoch_loop_fits_on_one_screen():
    tree = ast.parse(SCRIPT.read_text())
    loops = [node for node in ast.walk(tree) if isinstance(node, ast.While)
             and ast.unparse(node.test).startswith("progress.epoch")]
    assert len(loops) == 1, "train_mnist.py has one loop over the epochs"
    loop = loops[0]
    assert loop.end_lineno - loop.lineno + 1 <= 60


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(ROOT)) for p in MODULES])
def test_every_module_fits_its_budget(path):
    assert lines(path) <= 450, f"{path.name} has grown past 450 lines: split it by job"


def test_there_are_modules_to_check():
    assert len(MODULES) > 20 and ROOT / "minigan" / "settings.py" in MODULES


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.name for p in LESSONS])
def test_lessons_import_the_library_not_the_script(lesson):
    for info, line, source in code_blocks(lesson):
        if info == "python":
            # the script is run as a learner types it (python train_mnist.py ...), not imported
            assert "import train_mnist" not in source, f"{lesson.name}:{line}"
            for text in source.splitlines():  # the tests' stand-in may be put on the path
                assert "sys.path" not in text or '"tests"' in text, f"{lesson.name}:{line}"
