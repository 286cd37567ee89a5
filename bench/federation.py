"""Federation: what a remote step costs, and what moves between clusters.

    python bench/federation.py [--repeats 3] [--big-mb 1024] [--skip-big]

Three `cwl-crunch server`s on loopback (clusters sitea, siteb, sitec, peered: the test
fixture's tests/federation_sites.py). Runs start at sitea with `cwl-crunch-runner
--cluster`, reuse off, each measured ``--repeats`` times (medians printed):
- the added cost of one remote step: a 3-step chain all at home, against the same chain
  with its first step on siteb;
- a 3-shard scatter (Arvados' federated example) with one shard per cluster, against the
  same scatter with every shard at home, and against cwltool (which ignores the hints);
- bytes moved: a step on siteb reading one 10 MB file of a ``--big-mb`` collection stored
  at sitea (growth of siteb's store against the bytes the step read); and a step on
  siteb making 3 MB and 6 bytes of which the next step reads the 6 bytes (growth of
  sitea's store).
Prints times and ratios; the goals are in the issue, not asserted here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from federation_sites import WORKFLOWS, Site, run_workflow, start_sites  # noqa: E402

from cwl_crunch.client.http import HttpClient  # noqa: E402
from cwl_crunch.config import load_config  # noqa: E402
from cwl_crunch.store import Manifest  # noqa: E402
from cwl_crunch.store.locators import parse_locator, strip_signatures  # noqa: E402


def timed_run(site: Site, workflow: str, inputs: dict, scratch: Path) -> float:
    started = time.monotonic()
    run = run_workflow(site, workflow, inputs, scratch, "--disable-reuse")
    took = time.monotonic() - started
    if run.returncode != 0:
        raise SystemExit(f"{workflow} failed:\n{run.stderr[-3000:]}")
    return took


def median_of(repeats: int, run: callable) -> float:
    return statistics.median(run(index) for index in range(repeats))


def text_input(folder: Path, name: str, text: str) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return {"class": "File", "path": str(folder / name)}


def store_bytes(site: Site) -> int:
    blocks = site.home / "store" / "blocks"
    return sum(path.stat().st_size for path in blocks.rglob("*") if path.is_file())


def cwltool_time(workflow: str, inputs: dict, scratch: Path) -> float:
    import json

    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "inputs.json").write_text(json.dumps(inputs))
    started = time.monotonic()
    subprocess.run(["cwltool", "--quiet", "--parallel", "--no-container", "--outdir",
                    str(scratch / "out"), str(WORKFLOWS / workflow), str(scratch / "inputs.json")],
                   check=True, capture_output=True)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--big-mb", type=int, default=1024)
    parser.add_argument("--skip-big", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-federation-") as scratch_dir:
        scratch = Path(scratch_dir)
        sites = start_sites(scratch / "sites")
        try:
            measure(sites, scratch, args)
        finally:
            for site in sites.values():
                site.server.__exit__(None, None, None)
    return 0


def measure(sites: dict[str, Site], scratch: Path, args: argparse.Namespace) -> None:
    sitea = sites["sitea"]

    def chain(where: tuple[str, str, str]) -> callable:
        def once(index: int) -> float:
            folder = scratch / f"chain-{'-'.join(where)}-{index}"
            inputs = {"text": text_input(folder, "in.txt", f"run {index}\n"),
                      "where1": where[0], "where2": where[1], "where3": where[2]}
            return timed_run(sitea, "chain.cwl", inputs, folder)
        return once

    home = median_of(args.repeats, chain(("sitea", "sitea", "sitea")))
    one_remote = median_of(args.repeats, chain(("siteb", "sitea", "sitea")))
    print(f"3-step chain, all at home:        {home:6.2f} s")
    print(f"3-step chain, first on siteb:     {one_remote:6.2f} s  "
          f"(one remote step adds {one_remote - home:+.2f} s; ratio {one_remote / home:.2f}x)")

    def scatter(clusters: list[str]) -> callable:
        def once(index: int) -> float:
            folder = scratch / f"scatter-{'-'.join(clusters)}-{index}"
            texts = [text_input(folder, f"part{n}.txt", f"part {n} of run {index}\n")
                     for n in range(3)]
            return timed_run(sitea, "scatter.cwl", {"texts": texts, "clusters": clusters},
                             folder)
        return once

    at_home = median_of(args.repeats, scatter(["sitea"] * 3))
    spread = median_of(args.repeats, scatter(["sitea", "siteb", "sitec"]))
    folder = scratch / "scatter-cwltool"
    cwltool = cwltool_time("scatter.cwl", {
        "texts": [text_input(folder, f"part{n}.txt", f"part {n}\n") for n in range(3)],
        "clusters": ["sitea"] * 3}, folder)
    print(f"3-shard scatter, one cluster:     {at_home:6.2f} s")
    print(f"3-shard scatter, three clusters:  {spread:6.2f} s  (ratio {spread / at_home:.2f}x)")
    print(f"3-shard scatter, cwltool:         {cwltool:6.2f} s  (three clusters / cwltool: "
          f"{spread / cwltool:.2f}x)")
    outputs_home(sites, scratch)
    if not args.skip_big:
        big_collection(sites, scratch, args.big_mb)


def outputs_home(sites: dict[str, Site], scratch: Path) -> None:
    """A step on siteb makes a 3 MB file and a 6-byte one; the next step (at home, then
    on siteb again) reads the small one: what sitea's store gains from siteb."""
    for where2 in ("sitea", "siteb"):
        before = store_bytes(sites["sitea"])
        started = time.monotonic()
        run = run_workflow(sites["sitea"], "outputs-home.cwl",
                           {"where1": "siteb", "where2": where2},
                           scratch / f"outputs-home-{where2}", "--disable-reuse")
        took = time.monotonic() - started
        if run.returncode != 0:
            raise SystemExit(f"outputs-home.cwl failed:\n{run.stderr[-3000:]}")
        grew = store_bytes(sites["sitea"]) - before
        print(f"3 MB + 6 B made on siteb, the 6 B read on {where2}: sitea's store grew "
              f"{grew / 1024:.1f} KB in {took:.2f} s (its own run's files and logs too)")


def big_collection(sites: dict[str, Site], scratch: Path, big_mb: int) -> None:
    """One 10 MB file of a big collection read on siteb: what siteb's store gains."""
    folder = scratch / "big" / "data"
    folder.mkdir(parents=True)
    with (folder / "rest.bin").open("wb") as rest:
        for _ in range(max(big_mb - 10, 0)):
            rest.write(os.urandom(1 << 20))
    read = os.urandom(10 << 20)
    (folder / "read.bin").write_bytes(read)
    client = HttpClient(load_config({"CWL_CRUNCH_HOME": str(scratch / "big" / "client")},
                                    api_url=sites["sitea"].url, api_token=sites["sitea"].token))
    pdh = client.put_paths([folder])
    before = store_bytes(sites["siteb"])
    run = run_workflow(sites["sitea"], "chain.cwl",
                       {"text": {"class": "File", "location": f"keep:{pdh}/data/read.bin"},
                        "where1": "siteb", "where2": "sitea", "where3": "sitea"},
                       scratch / "big" / "run", "--submit", "--disable-reuse")
    if run.returncode != 0:
        raise SystemExit(f"the big-collection run failed:\n{run.stderr[-3000:]}")
    grew = store_bytes(sites["siteb"]) - before
    manifest = Manifest.from_text(strip_signatures(client.get_manifest(pdh)))
    locators = [loc for entry in manifest.files() for loc in entry.locators]
    blocks = sites["siteb"].home / "store" / "blocks"
    missing = {loc for loc in locators if not (blocks / loc[:2] / loc.split("+")[0]).exists()}
    held = sum(parse_locator(loc)[1] for loc in set(locators) - missing)
    total = sum(parse_locator(loc)[1] for loc in set(locators))
    print(f"one 10 MB file of a {big_mb} MB collection, read on siteb: siteb holds "
          f"{held / 2**20:.1f} MB of the collection's {total / 2**20:.0f} MB "
          f"(read {len(read) / 2**20:.0f} MB); its store grew {grew / 2**20:.1f} MB in all "
          "(the step's output, the file and a line, is stored there too)")

if __name__ == "__main__":
    sys.exit(main())
