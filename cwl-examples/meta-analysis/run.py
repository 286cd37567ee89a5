"""The meta-analysis example, end to end on this machine: four clusters on loopback (a
coordinating ``home`` and three sites), wired as peers; each site's synthetic cohort
stored resident there and its analysis image approved; the workflow run from home.

    python3 cwl-examples/meta-analysis/run.py [--workdir DIR] [--exit]

Prints the top variants, where the results are (``DIR/out``) and the home web page's URL
and token, then keeps the clusters up until Ctrl-C (``--exit``: stops them at once).
Needs a container engine (Docker or Podman, see the README) with the image
``docker.io/library/python:3-slim``; the approved image is built from ``image/``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
SITES = ("sitea", "siteb", "sitec")
HOME = "home0"
IMAGE = "localhost/meta-analysis-regress:1"
APPROVED_COMMAND = "python3 /opt/regress.py"


def crunch(*args: str, home: Path | None = None, url: str = "", token: str = "",
           capture: bool = True) -> str:
    """``cwl-crunch ARGS`` for a cluster: on its host (``home``) or through its API."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("CWL_CRUNCH_")}
    if home is not None:
        env["CWL_CRUNCH_HOME"] = str(home)
    if url:
        env.update(CWL_CRUNCH_API_URL=url, CWL_CRUNCH_API_TOKEN=token)
    done = subprocess.run([sys.executable, "-m", "cwl_crunch.cli.main", *args], env=env,
                          text=True, capture_output=capture, check=False)
    if done.returncode != 0:
        raise SystemExit(f"cwl-crunch {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    def __init__(self, root: Path, cluster_id: str) -> None:
        self.cluster_id = cluster_id
        self.home = root / cluster_id
        self.home.mkdir(parents=True)
        (self.home / "config.toml").write_text(f'cluster_id = "{cluster_id}"\n')
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = crunch("token", "create", home=self.home)
        self.process: subprocess.Popen[bytes] | None = None

    def configure(self, others: list[Cluster]) -> None:
        """Peers: each other cluster, with the token it issued to this one."""
        lines = [f'cluster_id = "{self.cluster_id}"']
        for other in others:
            token = crunch("token", "create", "--peer", self.cluster_id, home=other.home)
            lines += [f"[peers.{other.cluster_id}]", f'url = "{other.url}"',
                      f"token = {json.dumps(token)}"]
        (self.home / "config.toml").write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        log = (self.home / "server.log").open("ab")
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("CWL_CRUNCH_")}
        env["CWL_CRUNCH_HOME"] = str(self.home)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cwl_crunch.cli.main", "server",
             "--listen", f"127.0.0.1:{self.port}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
            start_new_session=True)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = (self.home / "server.log").read_text(errors="replace")
            if re.search(rf"at http://127\.0\.0\.1:{self.port}", text):
                return
            if self.process is not None and self.process.poll() is not None:
                raise SystemExit(f"the server of {self.cluster_id} stopped:\n{text[-2000:]}")
            time.sleep(0.1)
        raise SystemExit(f"the server of {self.cluster_id} did not start in {timeout:g} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def build_image() -> str:
    """The approved analysis image, built from ``image/`` by this machine's engine."""
    import docker

    from cwl_crunch.containers.engine import find_engine

    url = find_engine(os.environ.get("CWL_CRUNCH_CONTAINER_ENGINE", ""))
    if url is None:
        raise SystemExit("no container engine: see the README, 'Containers'")
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        tar.add(HERE / "image" / "Containerfile", arcname="Dockerfile")
        tar.add(HERE / "image" / "regress.py", arcname="regress.py")
    context.seek(0)
    client = docker.DockerClient(base_url=url, timeout=600)
    try:
        image, _ = client.images.build(fileobj=context, custom_context=True, tag=IMAGE,
                                       rm=True, forcerm=True)
        return str(image.id)
    finally:
        client.close()


@contextlib.contextmanager
def clusters(root: Path) -> Iterator[dict[str, Cluster]]:
    made = {name: Cluster(root, name) for name in (HOME, *SITES)}
    for cluster in made.values():
        cluster.configure([other for other in made.values() if other is not cluster])
    try:
        for cluster in made.values():
            cluster.start()
        for cluster in made.values():
            cluster.wait_ready()
        yield made
    finally:
        for cluster in made.values():
            cluster.stop()


def prepare_sites(made: dict[str, Cluster], cohorts: Path) -> list[str]:
    """Each site's cohort stored resident, its analysis approved; the cohorts' PDHs."""
    pdhs = []
    for site in SITES:
        cluster = made[site]
        pdh = crunch("put", "--resident", str(cohorts / site / "cohort.tsv"),
                     url=cluster.url, token=cluster.token)
        crunch("release", "add", "--image", IMAGE, "--command", APPROVED_COMMAND,
               "--note", f"{site}: per-variant effect sizes and standard errors only",
               home=cluster.home)
        print(f"{site}: cohort {pdh} stored resident; {IMAGE} approved", flush=True)
        pdhs.append(pdh)
    return pdhs


def run_workflow(home: Cluster, pdhs: list[str], workdir: Path, *extra: str) -> int:
    inputs = {"cohorts": [{"class": "File", "location": f"keep:{pdh}/cohort.tsv"}
                          for pdh in pdhs],
              "combine_script": {"class": "File", "path": str(HERE / "combine.py")}}
    (workdir / "inputs.json").write_text(json.dumps(inputs, indent=2))
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("CWL_CRUNCH_")}
    env.update(CWL_CRUNCH_API_TOKEN=home.token, CWL_CRUNCH_HOME=str(workdir / "runner"))
    return subprocess.run(
        [sys.executable, "-m", "cwl_crunch.cli.runner", "--cluster", home.url, *extra,
         "--outdir", str(workdir / "out"), str(HERE / "workflow.cwl"),
         str(workdir / "inputs.json")], env=env, check=False).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("meta-analysis-demo"))
    parser.add_argument("--exit", action="store_true",
                        help="stop the clusters when the run ends")
    parser.add_argument("--debug", action="store_true", help="the runner's tracebacks")
    parser.add_argument("--variants", type=int, default=1000)
    parser.add_argument("--people", type=int, default=2000)
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    subprocess.run([sys.executable, str(HERE / "make_cohorts.py"), str(workdir / "cohorts"),
                    "--variants", str(args.variants), "--people", str(args.people)],
                   check=True, stdout=subprocess.DEVNULL)
    print(f"approved image {IMAGE}: {build_image()}", flush=True)
    with clusters(workdir / "clusters") as made:
        pdhs = prepare_sites(made, workdir / "cohorts")
        code = run_workflow(made[HOME], pdhs, workdir, *(["--debug"] if args.debug else []))
        home = made[HOME]
        (workdir / "clusters.json").write_text(json.dumps(
            {name: {"url": cluster.url, "token": cluster.token, "home": str(cluster.home)}
             for name, cluster in made.items()}, indent=2))
        if code != 0:
            print(f"the run failed (exit code {code})", file=sys.stderr)
            return code
        print((workdir / "out" / "top_variants.tsv").read_text(), end="")
        print(f"results: {workdir / 'out'} (meta.tsv, top_variants.tsv, manhattan.png)")
        print(f"home web page: {home.url}/  (token: {home.token})")
        if not args.exit:
            print("clusters up; Ctrl-C stops them", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
