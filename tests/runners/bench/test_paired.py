"""The gate with the base measured beside the change, on a shared machine.

With a CPU-bound neighbour (two threads, like a training job on the same cores) running
through the measurement: an unchanged zoo is never FAIL (ok or inconclusive), and a zoo whose
softmax computes half its attention again (a planted 1.5x slowdown of its forward pass, in
the code) is never ok (FAIL or inconclusive). Also: the base's zoo is the one its worker
imports, a mechanism new at head is no failure, a benchmark that raises stops the gate with
one line and no file, and without git history the gate falls back to the stored baseline."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from runners.bench import gate, judge, paired, stats
from runners.bench.cli import main as bench_main
from tests.runners.bench.neighbour import busy_cores, neighbour
from tests.runners.bench.test_gate import BASE

CPU = torch.device("cpu")
ZOO = gate.REPO / "attention_zoo"
SOFTMAX_FORWARD = [gate.Case("softmax", 512, "forward"), gate.Case("softmax", 1024, "forward")]
ATTEND = "        return softmax_matrix(q, k, mask) @ v  # (B, H, N, D)\n"
PLANTED = (
    "        half = q[..., : q.shape[-2] // 2, :]  # planted: half the attention again\n"
    "        softmax_matrix(half, k, None) @ v\n" + ATTEND
)


def zoo_copy(root: Path, edit: tuple[str, str, str] | None = None) -> Path:
    """A copy of this tree's zoo under `root` (its worker's working directory), with one
    file's text replaced: `edit` = (file, old, new); the old text must be there."""
    shutil.copytree(ZOO, root / "attention_zoo", ignore=shutil.ignore_patterns("__pycache__"))
    if edit:
        path = root / "attention_zoo" / edit[0]
        text = path.read_text()
        assert edit[1] in text, f"{edit[0]} changed: update the planted edit"
        path.write_text(text.replace(edit[1], edit[2]))
    return root


def planted_zoo(root: Path) -> Path:
    return zoo_copy(root, ("softmax.py", ATTEND, PLANTED))


def in_git_checkout() -> bool:
    try:
        return paired.resolve("HEAD") is not None
    except paired.NoBase:
        return False


@pytest.mark.slow
def test_the_noise_meter_sees_a_neighbour():
    with neighbour(threads=2):
        assert busy_cores(1.0) > 0.8  # two spinning threads on a 2-core machine: ~1.5-2


@pytest.mark.slow
def test_under_a_neighbour_unchanged_is_never_fail_and_a_planted_slowdown_never_ok(tmp_path):
    base = zoo_copy(tmp_path / "base")
    planted = planted_zoo(tmp_path / "planted")
    with neighbour(threads=2):
        same = paired.run(SOFTMAX_FORWARD, base, gate.REPO, CPU, gate.Extra(), 1.3, 20.0)
        slow = paired.run(SOFTMAX_FORWARD, base, planted, CPU, gate.Extra(), 1.3, 20.0)
    for m in same:
        assert judge.from_paired([m])[0].state in ("ok", "inconclusive"), m.interval()
        assert m.busy and max(m.busy) > 0.5  # the gate saw the neighbour
    for m in slow:
        state = judge.from_paired([m])[0].state
        assert state in ("FAIL", "inconclusive"), m.interval()
        assert state != "FAIL" or m.check is not None  # a FAIL is confirmed in fresh workers


@pytest.mark.slow
def test_each_worker_imports_its_own_trees_zoo(tmp_path):
    planted = planted_zoo(tmp_path / "planted")
    side = paired.Side("head", planted, CPU, gate.Extra())
    side.close()  # the constructor checked attention_zoo.__file__ against the root
    (tmp_path / "empty").mkdir()
    with pytest.raises(gate.GateError, match=r"the base worker imported .* not the zoo in"):
        paired.Side("base", tmp_path / "empty", CPU, gate.Extra())  # fell back to this tree's


NEW = (
    "\nfrom attention_zoo.registry import register as _register\n"
    "from attention_zoo.softmax import Softmax as _Softmax\n\n\n"
    "@_register('newformer', complexity='quadratic')\nclass _New(_Softmax):\n    pass\n"
)


@pytest.mark.slow
def test_a_mechanism_new_at_head_is_reported_not_failed(tmp_path):
    base = zoo_copy(tmp_path / "base")
    head = zoo_copy(tmp_path / "head")
    with (head / "attention_zoo" / "__init__.py").open("a") as fh:
        fh.write(NEW)
    (m,) = paired.run(
        [gate.Case("newformer", 256, "forward")], base, head, CPU, gate.Extra(), 1.3, 0
    )
    assert m.missing and not m.base_ms and m.head_peak > 0
    (v,) = judge.from_paired([m])
    assert not v.failed and v.verdict == "new: not at the base"


BROKEN = (
    "from attention_zoo import register\nfrom attention_zoo.softmax import Softmax\n\n\n"
    "@register('brokenformer', complexity='quadratic')\nclass Broken(Softmax):\n"
    "    def forward(self, q, k, v, mask=None):\n"
    "        raise RuntimeError('brokenformer cannot attend')\n"
)


@pytest.mark.slow
@pytest.mark.skipif(not in_git_checkout(), reason="needs the repository's git history")
def test_a_benchmark_that_raises_stops_the_gate_with_one_line_and_no_file(tmp_path, capsys):
    plugin = tmp_path / "broken.py"
    plugin.write_text(BROKEN)
    keep = tmp_path / "now.json"
    argv = ["check", "--against", "HEAD", "--import", str(plugin), "-k", "brokenformer-forward-512"]
    assert bench_main([*argv, "--json", str(keep)]) == 2
    err = capsys.readouterr().err
    assert "bench: base: RuntimeError: brokenformer cannot attend" in err
    assert not keep.exists() and [p.name for p in tmp_path.iterdir()] == ["broken.py"]


def test_without_git_history_the_stored_baseline_is_used_and_said(tmp_path, monkeypatch, capsys):
    with pytest.raises(paired.NoBase, match="is not a git checkout"):
        paired.default_ref(tmp_path)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    with pytest.raises(paired.NoBase, match="no commit 'HEAD~1'"):
        paired.resolve("HEAD~1", tmp_path)  # a repository with no commits yet

    def no_history(repo=gate.REPO):
        raise paired.NoBase("no commit 'HEAD~1' (a shallow clone: fetch more history)")

    monkeypatch.setattr(paired, "default_ref", no_history)
    monkeypatch.setattr(judge, "run_benchmarks", lambda out, select, extra: BASE)
    (tmp_path / "base.json").write_text(json.dumps(BASE))
    assert bench_main(["check", "--baseline", str(tmp_path / "base.json")]) == 0
    out = capsys.readouterr().out
    assert "no base commit to measure beside the change (no commit 'HEAD~1'" in out
    assert "comparing with the stored baseline" in out and "bench: passed" in out
    # a base asked for by name is not replaced by the stored baseline
    assert bench_main(["check", "--against", "no-such-ref"]) == 2
    assert "--against no-such-ref: no commit 'no-such-ref'" in capsys.readouterr().err


def test_the_default_base_is_head_only_when_the_zoo_has_changed(tmp_path):
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "attention_zoo").mkdir()
    (tmp_path / "attention_zoo" / "mine.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "zoo")
    (tmp_path / "report.html").write_text("left by a test run")  # untracked, outside the zoo
    assert paired.default_ref(tmp_path) == "HEAD~1"  # CI's clean checkout: the last commit
    (tmp_path / "attention_zoo" / "new.py").write_text("y = 2\n")  # a new mechanism's file
    assert paired.default_ref(tmp_path) == "HEAD"


@pytest.mark.skipif(not in_git_checkout(), reason="needs the repository's git history")
def test_the_base_zoo_is_the_commits(tmp_path):
    commit = paired.resolve("HEAD")
    root = paired.extract_zoo(commit, tmp_path)
    shown = subprocess.run(
        ["git", "-C", str(gate.REPO), "show", f"{commit}:attention_zoo/registry.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (root / "attention_zoo" / "registry.py").read_text() == shown


def test_k_selects_with_pytests_grammar():
    names = [c.name for c in judge.selected("softmax and forward and not backward", gate.Extra())]
    assert names == ["softmax-forward-512", "softmax-forward-1024", "softmax-forward-2048"]
    with pytest.raises(gate.GateError, match="selects none of the 30 benchmarks"):
        judge.selected("nosuchformer", gate.Extra())


def test_a_neighbour_that_ends_mid_run_is_said():
    quiet, busy = paired.Measured(SOFTMAX_FORWARD[0]), paired.Measured(SOFTMAX_FORWARD[1])
    quiet.busy, busy.busy = [0.02], [1.9]
    quiet.reference_ms = busy.reference_ms = [17.0, 17.2, 16.9]
    seen = judge.noise_of([busy, quiet], load_average=1.0)
    assert seen.noisy  # 0.96 cores on average
    text = str(seen)
    assert "from 0.02 to 1.90 between benchmarks (the load changed during the run" in text
    steady = judge.noise_of([quiet], load_average=0.1)
    assert not steady.noisy and "the load changed" not in str(steady)


def test_a_fail_stands_only_if_fresh_workers_confirm_it():
    fail, fresh_ok = stats.Interval(1.8, 1.65, 2.02, 24), stats.Interval(0.85, 0.7, 1.1, 24)
    mem = (1000, 1000)
    confirmed = judge.verdict(
        "x", 1.0, 1.8, fail, mem, 1.3, check=stats.Interval(1.5, 1.4, 1.6, 12)
    )
    assert confirmed.state == "FAIL" and confirmed.verdict == "1.80x slower"
    refuted = judge.verdict("x", 1.0, 1.8, fail, mem, 1.3, check=fresh_ok)
    assert refuted.state == "inconclusive" and not refuted.failed
    assert "the FAIL was not confirmed: 0.85 [0.70, 1.10] in fresh workers" in refuted.verdict
    assert judge.verdict("x", 1.0, 1.0, fresh_ok, mem, 1.3, check=fail).state == "ok"
