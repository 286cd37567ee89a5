"""cwl-crunch-runner end to end: a scatter workflow, reuse, process tree, bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cwl_crunch
from cwl_crunch.client import JobFilter

EXAMPLE = Path(__file__).resolve().parents[2] / "cwl-examples" / "gc-content"


def run_runner(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cwl_crunch.cli.runner", *args], cwd=cwd, capture_output=True,
        text=True, timeout=120, check=False,
        env={"CWL_CRUNCH_HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin",
             # The code under test, not whatever cwl_crunch is installed.
             **{name: os.environ[name] for name in ("PYTHONPATH",) if name in os.environ}})


@pytest.fixture
def workdir(tmp_path):
    work = tmp_path / "example"
    shutil.copytree(EXAMPLE, work)
    return work


def children(cluster, uuid):
    return cluster.client.list_jobs(JobFilter(parent_uuid=uuid, limit=1000))


def latest_run(cluster):
    return cluster.client.list_jobs(JobFilter(top_level=True, limit=1))[0]


def test_scatter_workflow_outputs_and_process_tree(tmp_path, workdir):
    home, outdir = tmp_path / "home", tmp_path / "out"
    result = run_runner(home, "--outdir", str(outdir), "workflow.cwl", "inputs.yml",
                        cwd=workdir)
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert [f["basename"] for f in output["per_sample"]] == [
        "sample_a.tsv", "sample_b.tsv", "sample_c.tsv"]
    summary = (outdir / "gc_summary.tsv").read_text().splitlines()
    assert summary[0] == "sample\tbases\tgc"
    assert [line.split("\t")[0] for line in summary[1:]] == ["sample_a", "sample_b", "sample_c"]
    assert output["summary_table"]["path"] == str(outdir / "gc_summary.tsv")
    assert output["summary_table"]["checksum"].startswith("sha1$")
    with cwl_crunch.connect(home=home) as cluster:
        run = latest_run(cluster)
        steps = children(cluster, run.uuid)
        assert run.state == "Complete"
        # Named by step path; scattered steps by item index.
        assert sorted(step.name for step in steps) == [
            "workflow/gc/0", "workflow/gc/1", "workflow/gc/2", "workflow/summary"]
        assert all(step.state == "Complete" and step.output_pdh for step in steps)


def test_rerun_reuses_every_step_and_a_changed_input_reruns_only_its_path(tmp_path, workdir):
    home = tmp_path / "home"
    first = run_runner(home, "--outdir", str(tmp_path / "o1"), "workflow.cwl", "inputs.yml",
                       cwd=workdir)
    assert first.returncode == 0, first.stderr
    again = run_runner(home, "--outdir", str(tmp_path / "o2"), "workflow.cwl", "inputs.yml",
                       cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["summary_table"]["checksum"] == json.loads(
        first.stdout)["summary_table"]["checksum"]
    with cwl_crunch.connect(home=home) as cluster:
        steps = children(cluster, latest_run(cluster).uuid)
        assert all(step.reused_job_uuid for step in steps), [s.name for s in steps]
    # Change one sample: its gc step and the summary run again, the other two are reused.
    with (workdir / "sample_b.fa").open("a") as fasta:
        fasta.write(">extra\nGGGGCCCC\n")
    changed = run_runner(home, "--outdir", str(tmp_path / "o3"), "workflow.cwl",
                         "inputs.yml", cwd=workdir)
    assert changed.returncode == 0, changed.stderr
    with cwl_crunch.connect(home=home) as cluster:
        steps = {step.name: step for step in children(cluster, latest_run(cluster).uuid)}
        reran = sorted(name for name, step in steps.items() if not step.reused_job_uuid)
        assert reran == ["workflow/gc/1", "workflow/summary"]


def test_disable_reuse_runs_everything_again(tmp_path, workdir):
    home = tmp_path / "home"
    for outdir in ("o1", "o2"):
        result = run_runner(home, "--disable-reuse", "--outdir", str(tmp_path / outdir),
                            "workflow.cwl", "inputs.yml", cwd=workdir)
        assert result.returncode == 0, result.stderr
    with cwl_crunch.connect(home=home) as cluster:
        assert not any(step.reused_job_uuid
                       for step in children(cluster, latest_run(cluster).uuid))


def test_invalid_cwl_is_a_readable_error(tmp_path):
    broken = tmp_path / "broken.cwl"
    broken.write_text("cwlVersion: v1.2\nclass: CommandLineTool\ninputs: {}\n")
    result = run_runner(tmp_path / "home", "--outdir", str(tmp_path / "o"), str(broken))
    assert result.returncode == 1
    assert "broken.cwl" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_input_file_is_a_readable_error(tmp_path, workdir):
    (workdir / "sample_c.fa").unlink()
    result = run_runner(tmp_path / "home", "--outdir", str(tmp_path / "o"), "workflow.cwl",
                        "inputs.yml", cwd=workdir)
    assert result.returncode == 1
    assert "sample_c.fa" in result.stderr
    assert "Traceback" not in result.stderr


def test_failing_step_names_its_job_and_how_to_see_its_log(tmp_path):
    tool = tmp_path / "fail.cwl"
    tool.write_text("cwlVersion: v1.2\nclass: CommandLineTool\n"
                    "baseCommand: [sh, -c, 'echo broken >&2; exit 3']\n"
                    "inputs: {}\noutputs: {}\n")
    result = run_runner(tmp_path / "home", "--outdir", str(tmp_path / "o"), str(tool))
    assert result.returncode == 1
    assert "cwl-crunch jobs logs" in result.stderr
    assert "Traceback" not in result.stderr
    with cwl_crunch.connect(home=tmp_path / "home") as cluster:
        run = latest_run(cluster)
        assert run.state == "Failed"
        step = children(cluster, run.uuid)[0]
        assert step.uuid in result.stderr
        assert step.exit_code == 3


SLOW_WORKFLOW = """\
cwlVersion: v1.2
class: Workflow
inputs: {flag: string}
steps:
  quick:
    run:
      class: CommandLineTool
      baseCommand: [echo, quick]
      inputs: {}
      stdout: quick.txt
      outputs: {out: stdout}
    in: {}
    out: [out]
  slow:
    run:
      class: CommandLineTool
      baseCommand: [sh, -c]
      arguments:
        - 'test -f "$0" || sleep 60; cat "$1" > slow.txt'
        - $(inputs.flag)
        - $(inputs.after.path)
      inputs: {flag: string, after: File}
      outputs: {out: {type: File, outputBinding: {glob: slow.txt}}}
    in: {flag: flag, after: quick/out}
    out: [out]
outputs: {out: {type: File, outputSource: slow/out}}
"""


def test_ctrl_c_cancels_running_steps_and_a_rerun_resumes(tmp_path):
    home, flag = tmp_path / "home", tmp_path / "go-fast"
    workflow = tmp_path / "slow.cwl"
    workflow.write_text(SLOW_WORKFLOW)
    args = [sys.executable, "-m", "cwl_crunch.cli.runner", "--outdir", str(tmp_path / "o"),
            str(workflow), "--flag", str(flag)]
    env = {"CWL_CRUNCH_HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin"}
    runner = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with cwl_crunch.connect(home=home) as cluster:
            deadline = time.monotonic() + 60
            slow = None
            while slow is None and time.monotonic() < deadline:
                runs = cluster.client.list_jobs(JobFilter(top_level=True, limit=1))
                steps = children(cluster, runs[0].uuid) if runs else []
                slow = next((s for s in steps if s.name == "slow/slow" and s.state == "Running"),
                            None)
                time.sleep(0.1)
            assert slow is not None, "the slow step never started"
            runner.send_signal(signal.SIGINT)
            runner.wait(timeout=30)
            assert runner.returncode != 0
            run = cluster.client.get_job(runs[0].uuid)
            assert run.state == "Cancelled"
            states = {s.name: s.state for s in children(cluster, run.uuid)}
            assert states == {"slow/quick": "Complete", "slow/slow": "Cancelled"}
    finally:
        if runner.poll() is None:
            runner.kill()
    flag.write_text("now")
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    with cwl_crunch.connect(home=home) as cluster:
        steps = {s.name: s for s in children(cluster, latest_run(cluster).uuid)}
        assert steps["slow/quick"].reused_job_uuid  # resumed: the finished step is reused
        assert not steps["slow/slow"].reused_job_uuid
        assert steps["slow/slow"].state == "Complete"


def test_validate_runs_nothing(tmp_path, workdir):
    home = tmp_path / "home"
    result = run_runner(home, "--validate", "workflow.cwl", "inputs.yml", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "is valid CWL" in result.stdout
    with cwl_crunch.connect(home=home) as cluster:
        assert cluster.client.list_jobs(JobFilter(limit=10)) == []


@pytest.mark.parametrize(("inputs", "expected"), [
    ("{}\n", "samples"),  # a required input is missing
    ("samples: 3\n", "samples"),  # wrong type
])
def test_bad_inputs_are_readable_errors(tmp_path, workdir, inputs, expected):
    (workdir / "bad.yml").write_text(inputs)
    result = run_runner(tmp_path / "home", "--outdir", str(tmp_path / "o"), "workflow.cwl",
                        "bad.yml", cwd=workdir)
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    with cwl_crunch.connect(home=tmp_path / "home") as cluster:
        # At most the run's own record, Failed with cwltool's exit code; no step ran.
        jobs = cluster.client.list_jobs(JobFilter(limit=10))
        assert all(job.parent_uuid is None and job.state == "Failed" and job.exit_code == 1
                   for job in jobs)


PARTITIONED_TOOL = """\
cwlVersion: v1.2
class: CommandLineTool
$namespaces: {arv: "http://arvados.org/cwl#"}
hints:
  arv:PartitionRequirement: {partition: [fast, spare]}
baseCommand: [echo, placed]
inputs: []
outputs: []
"""


def test_arvados_partition_hint_is_kept_for_the_slurm_dispatcher(tmp_path):
    (tmp_path / "tool.cwl").write_text(PARTITIONED_TOOL)
    done = run_runner(tmp_path / "home", "--outdir", str(tmp_path / "out"),
                      str(tmp_path / "tool.cwl"))
    assert done.returncode == 0, done.stderr
    cluster = cwl_crunch.connect(home=tmp_path / "home")
    try:
        [step] = children(cluster, latest_run(cluster).uuid)
        assert step.spec.properties == {"partition": "fast,spare"}
    finally:
        cluster.close()


def test_tool_pointing_its_output_dir_elsewhere_fails_and_leaves_that_dir_intact(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("precious\n")
    os.chmod(victim / "precious.txt", 0o640)
    before = (victim / "precious.txt").stat()
    tool = tmp_path / "tool.cwl"
    tool.write_text(f"""cwlVersion: v1.2
class: CommandLineTool
baseCommand: [sh, -c]
arguments: ["cd ..; rm -rf out; ln -s {victim} out"]
inputs: []
outputs:
  result:
    type: File?
    outputBinding: {{glob: precious.txt}}
""")
    result = run_runner(tmp_path / "home", "--outdir", str(tmp_path / "o"), str(tool),
                        cwd=tmp_path)
    assert result.returncode != 0
    assert f"out is a symlink to {victim}" in result.stderr
    assert sorted(p.name for p in victim.iterdir()) == ["precious.txt"]
    after = (victim / "precious.txt").stat()
    assert (victim / "precious.txt").read_text() == "precious\n"
    assert (after.st_ino, after.st_mode, after.st_nlink) == (
        before.st_ino, before.st_mode, before.st_nlink)
    blocks = (tmp_path / "home" / "store" / "blocks").rglob("*")
    assert before.st_ino not in {p.stat().st_ino for p in blocks if p.is_file()}



def test_output_names_as_long_as_the_filesystem_allows_reach_the_outdir(tmp_path):
    longest, longest_dir = "n" * 251 + ".txt", "d" * 251 + ".dir"  # NAME_MAX on ext4
    assert len(longest) == os.pathconf(tmp_path, "PC_NAME_MAX")
    tool = tmp_path / "tool.cwl"
    tool.write_text(f"""cwlVersion: v1.2
class: CommandLineTool
baseCommand: [sh, -c]
arguments: ["mkdir {longest_dir}; echo deep > {longest_dir}/{longest}; echo top > {longest}"]
inputs: []
outputs:
  dir: {{type: Directory, outputBinding: {{glob: "d*"}}}}
  file: {{type: File, outputBinding: {{glob: "n*"}}}}
""")
    outdir = tmp_path / "o"
    result = run_runner(tmp_path / "home", "--outdir", str(outdir), str(tool), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["file"]["path"] == str(outdir / longest)
    assert (outdir / longest).read_text() == "top\n"
    assert (outdir / longest_dir / longest).read_text() == "deep\n"
    assert sorted(os.listdir(outdir)) == sorted([longest, longest_dir])
