"""benchmarks/tanh_edge.py: how far a G's pixels sit at the edge of its Tanh (where its gradient
through Tanh is 0), against MNIST's images; docs/time_to_quality/README.md reads it."""

import numpy as np
import pytest

from clitest import assert_clean_error, load_benchmark, run_command
from minigan import checkpoint

edge = load_benchmark("tanh_edge")


def test_the_statistics_of_known_pixels():
    x = np.tile([[0.5, -1.0], [0.5, -1.0], [1.0, -1.0]], 392)  # three images of 784 pixels
    slope, inside, distinct = edge.edge_stats(x)
    assert slope == pytest.approx((0.75 + 0 + 0.75 + 0 + 0 + 0) / 6)  # 1 - x^2 per pixel
    assert inside == pytest.approx(2 / 6)  # the two 0.5s
    assert distinct == 2
    # the edge of "inside" is strict: -0.9 and 0.9 are out, 0.89 in
    _, inside, _ = edge.edge_stats(np.tile([0.89, 0.9, -0.9, -0.89], (1, 196)))
    assert inside == 0.5


def row(out, name):
    line = next(r for r in out.splitlines() if r.startswith(name))
    slope, inside, distinct = line[len(name):].split()
    return float(slope), float(inside), int(distinct)


def test_a_g_driven_to_the_edge_reads_zero_and_a_trained_one_does_not(plain_run, capsys):
    assert edge.main([str(plain_run), "--n", "200"]) == 0
    real = row(capsys.readouterr().out, "MNIST test images")
    # Push G's last bias to +50: every pixel tanh(a + 50) = 1 to float32, Tanh's slope 0.
    arrays, meta = checkpoint.load(plain_run / "checkpoint.npz")
    last = max((k for k in arrays if k.startswith("G/") and k.endswith(".b")),
               key=lambda k: int(k[2:-2]))  # "G/4.b": the Dense before Tanh
    saturated = plain_run.parent / "saturated"
    saturated.mkdir()
    (saturated / "config.json").write_text((plain_run / "config.json").read_text())
    checkpoint.save(saturated / "checkpoint.npz", {**arrays, last: arrays[last] + 50}, meta)
    assert edge.main([str(plain_run), str(saturated), "--n", "200"]) == 0
    out = capsys.readouterr().out
    assert row(out, "saturated") == (0.0, 0.0, 1)  # one image, all white
    slope, inside, distinct = row(out, "run")
    assert slope > 0.01 and inside > 0.01 and distinct == 200  # a G at its start moves
    assert 0.05 < real[0] < 0.1 and 0.05 < real[1] < 0.15 and real[2] == 200  # MNIST: ~90% at
    # the edge (the background), but every image its own


def test_a_g_whose_weights_went_nan_is_a_clean_error(plain_run, tmp_path):
    arrays, meta = checkpoint.load(plain_run / "checkpoint.npz")
    nan = tmp_path / "diverged"
    nan.mkdir()
    (nan / "config.json").write_text((plain_run / "config.json").read_text())
    checkpoint.save(nan / "checkpoint.npz", {k: (v * np.nan if k.startswith("G/") and
                                                 v.dtype.kind == "f" else v)
                                             for k, v in arrays.items()}, meta)
    result = run_command(["benchmarks/tanh_edge.py", str(nan), "--n", "20"], cwd=tmp_path)
    assert_clean_error(result, str(nan), "NaN", "diverged")


def test_a_folder_without_a_run_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        edge.main([str(tmp_path)])
    # the folder named once: was "RUN: RUN: no config.json there"
    assert e.value.code == 2
    assert f"error: {tmp_path}: no config.json there" in capsys.readouterr().err


@pytest.mark.parametrize("n", ["0", "1000001", "1000000000000",  # the third: a MemoryError
                               "abc"])  # was argparse's "invalid int value"
def test_n_out_of_range_is_a_clean_error(tmp_path, n):
    result = run_command(["benchmarks/tanh_edge.py", str(tmp_path), "--n", n], cwd=tmp_path)
    assert_clean_error(result, f"--n {n}", "from 1 to 1,000,000")
