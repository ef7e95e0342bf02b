"""``python -m minigan.lessons build OUT``: bad input is one clear message, exit status 2, and
nothing written; the images a lesson embeds are found as Markdown shows them. (The build itself,
through a real kernel, is tested in tests/test_notebooks.py.)"""

import pytest

from clitest import ROOT, assert_clean_error, call, run_command, snapshot
from minigan import lessons


BAD = [
    ([], "command"),
    (["build"], "OUT"),
    (["build", ""], "OUT"),
    (["build", "afile"], "OUT afile: not allowed"),
    (["build", "afile/sub"], "not a file or a path inside one"),
    (["build", "out", "--only", "99"], "--only 99: not allowed; use lesson numbers among 1, 2"),
    (["build", "out", "--only", "3", "x"], "--only x"),
    (["build", "out", "--only", "²"], "--only ²: not allowed"),  # "²".isdigit(); int("²") raised
    (["build", "out", "--timeout", "0"], "--timeout 0.0: not allowed; use a number > 0"),
    (["build", "out", "--timeout", "nan"], "--timeout nan"),
    (["build", "out", "--timeout", "inf"], "--timeout inf"),
    (["build", "out", "--timeout", "soon"],  # was argparse's "invalid float value"
     "--timeout soon: not allowed; use a number > 0 (default: 600)"),
    (["build", "n" * 300], "the name is too long"),  # was "not a file or a path inside one"
    (["build", "out", "--bogus"], "--bogus"),
    (["rebuild", "out"], "invalid choice"),
]


@pytest.mark.parametrize("args,needle", BAD, ids=[" ".join(a) or "none" for a, _ in BAD])
def test_bad_input_is_a_clean_error_and_writes_nothing(tmp_path, monkeypatch, capsys, args,
                                                       needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("not a folder\n")
    before = snapshot(tmp_path)
    result = call(lessons.main, args, capsys)
    assert_clean_error(result, needle)
    assert snapshot(tmp_path) == before and not (tmp_path / "out").exists()


def test_an_unknown_kernel_is_a_clean_error(tmp_path, monkeypatch, capsys):
    pytest.importorskip("jupyter_client", reason="jupyter_client (with nbclient, the dev extra) "
                        "is not installed")
    monkeypatch.chdir(tmp_path)
    result = call(lessons.main, ["build", "out", "--kernel", "no-such-kernel"], capsys)
    assert_clean_error(result, "--kernel no-such-kernel", "jupyter kernelspec list")
    assert not (tmp_path / "out").exists()


def test_missing_notebook_tools_are_a_clean_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(lessons, "missing_tools", lambda: ["nbclient", "ipykernel"])
    result = call(lessons.main, ["build", "out"], capsys)
    assert_clean_error(result, "nbclient, ipykernel are not installed", 'pip install -e ".[dev]"')
    assert not (tmp_path / "out").exists()


def test_no_traceback_reaches_the_terminal(tmp_path):
    (tmp_path / "afile").write_text("x\n")
    before = snapshot(tmp_path)
    result = run_command(["-m", "minigan.lessons", "build", "afile/out"], cwd=tmp_path)
    assert_clean_error(result, "OUT afile/out")
    assert snapshot(tmp_path) == before


def test_every_lesson_is_numbered_and_found():
    found = lessons.lessons()
    assert sorted(found) == list(range(1, len(found) + 1))
    assert all(p.name.startswith(f"{n:02d}_") for n, p in found.items())


def test_the_build_puts_a_lessons_images_beside_its_notebook(tmp_path):
    """copy_images, on every lesson that embeds one: each image lands under OUT where the
    notebook's Markdown points (one from docs/, ../docs/x.png, at OUT/docs/x.png)."""
    pytest.importorskip("jupytext", reason="jupytext is not installed (the dev extra)")
    with_images = {n: p for n, p in lessons.lessons().items() if lessons.images(p)}
    assert with_images, "no lesson embeds an image"
    for n, path in with_images.items():
        out = tmp_path / str(n)
        nb = lessons.to_notebook(path)
        copied = lessons.copy_images(path, out, nb)
        markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        for target in lessons.images(path):
            where = (path.parent / target).resolve().relative_to(ROOT).as_posix() \
                if ".." in target else target
            assert (out / where).is_file() and f"]({where}" in markdown, (path.name, target)
            assert (out / where).read_bytes() == (path.parent / target).read_bytes()
        assert len(copied) == len(lessons.images(path))
