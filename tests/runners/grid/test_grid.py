"""The run grid: local and submitit launchers run every cell once, a preempted job is
requeued and resumes, a killed one resumes when the grid is submitted again, `status`
tells done / running / failed / pending, and SLURM gets the job arrays it should."""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from pathlib import Path

import pytest

from results.schema import read_results
from runners.grid import cli as grid
from runners.grid.plan import grid_folder, plan_lra
from runners.grid.status import cell_states
from tests.runners.tiny import lra_args

pytest.importorskip("submitit")


def grid_args(
    data: Path, out: Path, jobs: Path, *extra: str, steps: int = 8, every: int = 4
) -> list[str]:
    runner = lra_args(data, out, f"--set=train.eval_every={every}", steps=steps)
    return ["lra", f"--jobs-dir={jobs}", *extra, *runner]


def only_grid(jobs: Path) -> Path:
    (folder,) = [p.parent for p in jobs.glob("*/grid.json")]
    return folder


def states(folder: Path) -> dict[str, tuple[str, str]]:
    return {cell.id: (state, detail) for cell, state, detail in cell_states(folder)[1]}


def record(folder: Path, cell: str) -> dict:
    return json.loads((folder / "cells" / f"{cell}.json").read_text())


def wait_for(what, timeout: float = 120.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while not (value := what()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)
    return value


def checkpointed(out: Path) -> bool:
    """The run has written its first training checkpoint (at its first validation)."""
    return any(not p.name.endswith(".best.pt") for p in (out / "ckpt").glob("*.pt"))


@pytest.mark.slow
def test_a_local_grid_runs_each_cell_once_each_job_in_its_own_part(listops_dir, tmp_path):
    argv = grid_args(
        listops_dir,
        tmp_path,
        tmp_path / "jobs",
        "--tasks=listops",
        "--methods=softmax,performer",
        "--seeds=0,1",
        "--workers=2",
    )
    assert grid.main(argv) == 0
    rows = read_results(tmp_path / "lra")
    assert len(rows) == 8 and (rows["status"] == "ok").all()  # 4 runs x (val, test)
    parts = list((tmp_path / "lra").glob("lra-*.parquet"))
    assert len(parts) == 4  # one writer per job, one part each
    folder = only_grid(tmp_path / "jobs")
    assert {s for s, _ in states(folder).values()} == {"done"}
    log = (folder / "logs" / "listops-softmax-s1.log").read_text()
    assert "listops-softmax-s1" in log and "val" in log
    assert grid.main(argv) == 0  # nothing left to run
    assert len(list((tmp_path / "lra").glob("lra-*.parquet"))) == 4
    assert grid_folder_of(argv) == folder  # the same command maps to the same grid


def grid_folder_of(argv: list[str]) -> Path:
    args, rest = grid.build_parser().parse_known_args(argv)
    cells, _ = plan_lra(args.tasks, args.methods, args.seeds, rest)
    return grid_folder(args.jobs_dir, "lra", cells)


@pytest.mark.slow
def test_status_tells_done_failed_and_pending_with_the_error(listops_dir, tmp_path, capsys):
    jobs = tmp_path / "jobs"
    argv = grid_args(listops_dir, tmp_path, jobs, "--tasks=listops,pathfinder", "--methods=softmax")
    assert grid.main(argv) == 1  # pathfinder has no data here
    folder = only_grid(jobs)
    got = states(folder)
    assert got["listops-softmax-s0"][0] == "done" and "test" in got["listops-softmax-s0"][1]
    state, detail = got["pathfinder-softmax-s0"]
    assert state == "failed" and "pathfinder: not run" in detail and "generate" in detail
    other = grid_args(listops_dir, tmp_path, jobs, "--tasks=listops", "--methods=lotformer")
    assert grid.main([*other, "--dry-run"]) == 0
    capsys.readouterr()
    assert grid.main(["status", f"--jobs-dir={jobs}"]) == 0
    text = capsys.readouterr().out
    assert "1 done, 0 running, 1 failed, 0 pending" in text
    assert "0 done, 0 running, 0 failed, 1 pending" in text
    assert "listops lotformer s0  pending  not submitted" in text
    assert grid.main(["status", f"--jobs-dir={tmp_path / 'none'}"]) == 1


def test_bad_runner_options_fail_before_anything_is_submitted(listops_dir, tmp_path, capsys):
    jobs = tmp_path / "jobs"
    for bad, says in (
        ("--set=train.steps=0", "train.steps"),
        ("--efficiency", "not a grid's"),
        ("--no-such-flag", "unrecognized arguments"),
    ):
        with pytest.raises(SystemExit):
            grid.main([*grid_args(listops_dir, tmp_path, jobs, "--tasks=listops"), bad])
        assert says in capsys.readouterr().err
    assert not jobs.exists()


def submit(
    data: Path, out: Path, jobs: Path, *options: str, steps: int = 8, every: int = 4
) -> Path:
    """Submit a one-cell grid (listops, softmax, seed 0) through submitit; its folder."""
    argv = grid_args(
        data,
        out,
        jobs,
        "--tasks=listops",
        "--methods=softmax",
        "--launcher=submitit",
        *options,
        steps=steps,
        every=every,
    )
    assert grid.main(argv) == 0
    return only_grid(jobs)


@pytest.mark.slow
def test_submitit_debug_executor_runs_the_grid(listops_dir, tmp_path):
    folder = submit(listops_dir, tmp_path, tmp_path / "jobs", "--submitit-cluster=debug")
    assert states(folder)["listops-softmax-s0"][0] == "done"
    assert record(folder, "listops-softmax-s0")["executor"] == "debug"


def submit_local(data: Path, out: Path, jobs: Path) -> Path:
    """A 200-step run validated (and checkpointed) every 50 steps: the test signals it at
    its first checkpoint, a second or more before it could finish."""
    options = ("--submitit-cluster=local", "--gpus-per-job=0")
    return submit(data, out, jobs, *options, steps=200, every=50)


def submitit_log(folder: Path) -> str:
    return "".join(p.read_text() for p in (folder / "submitit").glob("*_log.err"))


def pending(pid: int, sig: int) -> bool:
    """Whether `sig` waits, undelivered, for process `pid` (Linux: /proc/PID/status)."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    mask = int(fields["ShdPnd"], 16) | int(fields["SigPnd"], 16)
    return bool(mask & (1 << (sig - 1)))


@pytest.mark.slow
def test_a_preempted_submitit_job_is_requeued_and_resumes(listops_dir, tmp_path):
    out, jobs = tmp_path / "out", tmp_path / "jobs"
    folder = submit_local(listops_dir, out, jobs)
    cell = "listops-softmax-s0"
    wait_for(lambda: record(folder, cell)["state"] == "running" and checkpointed(out))
    runner_pid = wait_for(lambda: record(folder, cell).get("runner_pid"))
    # frozen, the runner cannot finish its 200 steps before the signal reaches it (a fast
    # machine did, and the job was never preempted); it handles the signal once thawed
    os.kill(runner_pid, signal.SIGSTOP)
    try:
        assert states(folder)[cell][0] == "running" and "/200" in states(folder)[cell][1]
        os.kill(record(folder, cell)["pid"], signal.SIGUSR2)  # what SLURM sends first
        wait_for(lambda: pending(runner_pid, signal.SIGUSR2))  # the job has forwarded it
    finally:
        os.kill(runner_pid, signal.SIGCONT)
    wait_for(lambda: states(folder)[cell][0] == "done")
    assert record(folder, cell)["attempts"] == 2
    log = submitit_log(folder)
    assert "this job is preempted" in log or "this job is timed-out" in log
    assert "resuming from" in log
    rows = read_results(out / "lra")
    assert len(rows) == 2 and set(rows["steps"]) == {200}


@pytest.mark.slow
def test_a_killed_job_resumes_from_its_checkpoint_when_the_grid_is_submitted_again(
    listops_dir, tmp_path
):
    out, jobs = tmp_path / "out", tmp_path / "jobs"
    folder = submit_local(listops_dir, out, jobs)
    cell = "listops-softmax-s0"
    wait_for(lambda: "runner_pid" in record(folder, cell) and checkpointed(out))
    rec = record(folder, cell)
    for pid in (rec["runner_pid"], rec["pid"], int(rec["job_id"])):  # runner, job, controller
        os.kill(pid, signal.SIGKILL)
    _, detail = wait_for(lambda: states(folder)[cell][0] == "failed" and states(folder)[cell])
    assert "ended without finishing" in detail and "resumes" in detail
    assert read_results(out / "lra").empty
    folder2 = submit_local(listops_dir, out, jobs)
    assert folder2 == folder
    wait_for(lambda: states(folder)[cell][0] == "done")
    assert "resuming from" in submitit_log(folder)
    assert record(folder, cell)["attempts"] == 2
    assert len(read_results(out / "lra")) == 2


def fake_slurm(bin_dir: Path, sacct_lines: str) -> Path:
    """`sbatch` that keeps each script and answers with a new job id; `sacct` that prints
    `sacct_lines`. Returns the folder of the kept scripts."""
    kept = bin_dir / "kept"
    kept.mkdir(parents=True)
    scripts = {
        "sbatch": f"""#!/bin/sh
n=$(ls {kept} | wc -l)
cp "$1" {kept}/$n.sh
echo "Submitted batch job $((4242 + n))"
""",
        "sacct": f"#!/bin/sh\nprintf '{sacct_lines}'\n",
        "srun": "#!/bin/sh\nexit 1\n",  # submitit looks for it; the jobs never run here
    }
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return kept


def test_slurm_gets_one_array_per_partition_and_status_reads_sacct(tmp_path, monkeypatch, capsys):
    lines = r"4242_0|RUNNING\n4242_1|PENDING\n4243_0|CANCELLED by 0\n4243_1|OUT_OF_MEMORY\n"
    kept = fake_slurm(tmp_path / "bin", lines)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    argv = [
        "sweep",
        "--methods=softmax,performer",
        "--launcher=submitit",
        "--submitit-cluster=slurm",
        "--slurm-partition=a100,h100",
        "--timeout-min=90",
        "--slurm-constraint=80gb",
        "--preset=paper",
        "--out=sweep-out",
    ]
    monkeypatch.setenv("PATH", os.environ["PATH"].split(":", 1)[1])  # no SLURM
    with pytest.raises(SystemExit):
        grid.main(argv)
    assert "use --submitit-cluster local" in capsys.readouterr().err
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    assert grid.main(argv) == 0
    scripts = sorted(kept.glob("*.sh"))
    assert len(scripts) == 2  # one job array per partition
    for script, partition in zip(scripts, ("a100", "h100"), strict=True):
        text = script.read_text()
        for line in (
            f"#SBATCH --partition={partition}",
            "#SBATCH --array=0-1%2",
            "#SBATCH --gpus-per-node=1",
            "#SBATCH --time=90",
            "#SBATCH --signal=USR2@120",
            "#SBATCH --constraint=80gb",
        ):
            assert line in text, (line, text)
        assert "submitit.core._submit" in text
    folder = only_grid(tmp_path / "jobs")
    got = states(folder)
    assert got["softmax-a100"][0] == "running"
    assert got["performer-a100"][0] == "pending"
    assert got["softmax-h100"][0] == "failed" and "CANCELLED" in got["softmax-h100"][1]
    assert got["performer-h100"][0] == "failed" and "OUT_OF_MEMORY" in got["performer-h100"][1]
    assert grid.main(argv) == 0  # again: only the two that ended are submitted
    scripts = sorted(kept.glob("*.sh"))
    assert len(scripts) == 3 and "#SBATCH --array=0-1%2" in scripts[2].read_text()
    assert "#SBATCH --partition=h100" in scripts[2].read_text()


@pytest.mark.slow
def test_gpus_per_job_trains_each_run_across_that_many_ranks(listops_dir, tmp_path):
    """submitit's local executor starts 2 tasks; each becomes a rank (gloo on CPU)."""
    options = ("--submitit-cluster=local", "--gpus-per-job=2", "--wait")
    submit(listops_dir, tmp_path, tmp_path / "jobs", *options)
    rows = read_results(tmp_path / "lra")
    assert len(rows) == 2 and set(rows["world_size"]) == {2} and (rows["status"] == "ok").all()
    assert len(list((tmp_path / "lra").glob("*.parquet"))) == 1  # rank 0 alone wrote
