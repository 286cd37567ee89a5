// The two views: the top-level jobs, and one job (details, children, logs, output).
// Each view keeps its data fresh from job events: rows of jobs that changed are
// re-read; an event about a job the view does not show may be a new job in its listing,
// so the listing is re-read (at most every REFRESH_MS).

import * as api from "./api.js";
import {
  duration, el, FINAL_STATES, isoTime, jobDuration, plural, shellJoin, size, stateBadge,
  time,
} from "./format.js";
import { LogPanel } from "./logs.js";
import { clusterMark, JobTable, jobLink, reuseMarker } from "./table.js";

const REFRESH_MS = 250;
const PAGE = 100;
const MAX_CHILDREN = 10000;
const REMOTE_POLL_MS = 1000;

// Batches "these jobs changed" into one GET /jobs?uuid=...&uuid=... and "the listing may
// have changed" into one listing read.
class Refresher {
  constructor(readRows, readListing, onError) {
    this.readRows = readRows;
    this.readListing = readListing;
    this.onError = onError;
    this.pending = new Set();
    this.listing = false;
    this.timer = null;
  }

  rows(uuid) {
    this.pending.add(uuid);
    this.schedule();
  }

  all() {
    this.listing = true;
    this.schedule();
  }

  schedule() {
    if (this.timer === null) {
      this.timer = setTimeout(() => this.flush(), REFRESH_MS);
    }
  }

  async flush() {
    const uuids = [...this.pending];
    const listing = this.listing;
    this.pending.clear();
    this.listing = false;
    try {
      if (uuids.length) {
        await this.readRows(await api.jobsByUuid(uuids));
      }
      if (listing) {
        await this.readListing();
      }
    } catch (error) {
      this.onError(error);
    } finally {
      this.timer = null;
      if (this.pending.size || this.listing) {
        this.schedule();
      }
    }
  }

  destroy() {
    clearTimeout(this.timer);
  }
}

export class TopView {
  constructor(container, onError) {
    this.onError = onError;
    this.limit = PAGE;
    this.table = new JobTable("No jobs yet: submit one with cwl-crunch-runner or the SDK.");
    this.more = el("button", { type: "button", class: "more", hidden: true,
      onclick: () => { this.limit += PAGE; this.load(); } }, "Show more");
    container.replaceChildren(el("section", { class: "top-level" },
      el("h1", {}, "Runs"),
      el("p", { class: "hint" }, "Top-level jobs, newest first. Click one to see its steps."),
      this.table.element, this.more));
    this.refresher = new Refresher((jobs) => this.table.updateSome(jobs), () => this.load(),
      onError);
    document.title = "Runs – cwl-crunch";
  }

  async load() {
    await api.loadHome();
    const jobs = await api.get(`/api/v1/jobs?top_level=true&limit=${this.limit}`);
    this.table.replaceAll(jobs);
    this.more.hidden = jobs.length < this.limit;
  }

  onEvent(event) {
    if (this.table.has(event.job_uuid)) {
      this.refresher.rows(event.job_uuid);
    } else {
      this.refresher.all();
    }
  }

  tick() {
    this.table.tick();
  }

  destroy() {
    this.refresher.destroy();
  }
}

export class JobView {
  constructor(container, uuid, logName, onError) {
    this.uuid = uuid;
    this.onError = onError;
    this.job = null;
    this.outputShown = null;
    this.breadcrumb = el("nav", { class: "breadcrumb", "aria-label": "ancestors" });
    this.title = el("h1", { class: "job-title" });
    this.details = el("dl", { class: "details" });
    this.children = new JobTable("No child jobs.");
    this.childCount = el("span", { class: "count" });
    this.output = el("section", { class: "output" });
    this.logs = new LogPanel(uuid, logName, (log) => { location.hash = `#/jobs/${uuid}/logs/${log}`; },
      onError);
    container.replaceChildren(el("section", { class: "job" },
      this.breadcrumb, this.title, this.details,
      el("section", { class: "children" }, el("h2", {}, "Child jobs ", this.childCount),
        this.children.element),
      this.logs.element, this.output));
    this.refresher = new Refresher((jobs) => this.updateRows(jobs), () => this.loadChildren(),
      onError);
  }

  async load() {
    await api.loadHome();
    const job = await api.get(api.jobPath(this.uuid));
    this.showJob(job);
    await Promise.all([this.loadAncestors(job), this.loadChildren()]);
    if (api.isRemote(job.uuid) || api.handedTo(job)) {
      // No events here of another cluster's jobs: read them again while any runs.
      this.poller = setInterval(() => {
        const rows = [...this.children.rows.values()].map((row) => row.job);
        if (!FINAL_STATES.has(this.job.state) || rows.some((row) => !FINAL_STATES.has(row.state))) {
          this.refresher.rows(this.uuid);
          this.refresher.all();
        }
      }, REMOTE_POLL_MS);
    }
  }

  async loadAncestors(job) {
    const chain = [];
    const here = await api.loadHome();
    let parent = job.parent_uuid;
    let foreign = null;  // a parent on another cluster: its record is there, not here
    while (parent && chain.length < 100) {
      let record = null;
      if (parent.split("-")[0] !== here) {
        // Another cluster's: read through this one's peer routes if it is a peer.
        const known = (await api.peerIds()).has(api.clusterOf(parent));
        record = known ? await api.get(api.jobPath(parent)).catch(() => null) : null;
      } else {
        record = await api.get(api.jobPath(parent));
      }
      if (record === null) {
        foreign = el("span", { class: "foreign-parent" },
          `${parent} (on cluster ${parent.split("-")[0]})`);
        break;
      }
      chain.unshift(record);
      parent = record.parent_uuid;
    }
    const ancestors = chain.map((record) => jobLink(record));
    if (foreign) {
      ancestors.unshift(foreign);
    }
    this.breadcrumb.replaceChildren(el("a", { href: "#/" }, "Runs"),
      ...ancestors.flatMap((node) => [el("span", { class: "sep" }, " › "), node]),
      el("span", { class: "sep" }, " › "), el("span", { class: "current" }, job.spec.name || job.uuid));
  }

  async loadChildren() {
    const job = this.job || { uuid: this.uuid, spec: { command: [] } };
    const jobs = await api.childrenOf(job, MAX_CHILDREN);
    jobs.reverse();  // steps in the order they were made
    this.children.replaceAll(jobs);
    this.childCount.textContent = jobs.length ? `(${jobs.length})` : "";
  }

  updateRows(jobs) {
    this.children.updateSome(jobs);
    const self = jobs.find((job) => job.uuid === this.uuid);
    if (self) {
      this.showJob(self);
    }
  }

  showJob(job) {
    this.job = job;
    document.title = `${job.spec.name || job.uuid} – cwl-crunch`;
    this.title.replaceChildren(job.spec.name || "(unnamed job)", " ",
      ...[stateBadge(job.state, job.exit_code)].flat(), ...clusterMark(job.uuid));
    this.title.dataset.state = job.state;
    const rows = detailRows(job);
    if (this.residency && this.residency.job === job.uuid && this.residency.text) {
      rows.push(["Residency", el("span", { class: "residency" }, this.residency.text),
        "residency"]);
    }
    this.details.replaceChildren(...rows.flatMap(([term, value, key]) => [
      el("dt", {}, term), el("dd", { dataset: { field: key } }, value)]));
    const made = `${job.uuid} ${job.output_pdh} ${job.log_pdh}`;
    if (!api.isRemote(this.uuid) && (job.output_pdh || job.log_pdh)
        && this.residencyAsked !== made) {
      this.residencyAsked = made;
      this.loadResidency(job).catch(this.onError);
    }
    if (job.output_pdh && this.outputShown !== job.output_pdh) {
      this.outputShown = job.output_pdh;
      this.loadOutput(job.output_pdh).catch((error) => this.output.replaceChildren(
        el("h2", {}, "Output"), el("p", { class: "pdh" }, el("code", {}, job.output_pdh)),
        el("p", { class: "refused" }, error.message)));
    }
    this.logs.poke();
  }

  // Whether the output and logs must stay on this cluster (data residency), and why.
  async loadResidency(job) {
    const said = [];
    for (const [what, pdh] of [["output", job.output_pdh], ["logs", job.log_pdh]]) {
      if (!pdh) {
        continue;
      }
      const answer = await api.get(`${api.collectionPath(pdh)}/residency`);
      if (answer.residency) {
        said.push(`${what}: ${answer.residency.state} (${answer.residency.reason})`);
      }
    }
    this.residency = { job: job.uuid, text: said.join("; ") };
    if (said.length && this.job) {
      this.showJob(this.job);
    }
  }

  async loadOutput(pdh) {
    const remote = api.isRemote(this.uuid);
    const entries = await api.get(remote
      ? `/api/v1/peers/${api.clusterOf(this.uuid)}/collections/${encodeURIComponent(pdh).replace("%2B", "+")}/entries?job=${encodeURIComponent(this.uuid)}`
      : `${api.collectionPath(pdh)}/entries`);
    const files = entries.filter((entry) => entry.kind === "file");
    this.output.replaceChildren(el("h2", {}, "Output"),
      el("p", { class: "pdh" }, el("code", {}, pdh)),
      files.length ? el("table", { class: "files" },
        el("thead", {}, el("tr", {}, el("th", {}, "File"), el("th", {}, "Size"))),
        el("tbody", {}, files.map((entry) => el("tr", {},
          el("td", {}, remote ? entry.path : downloadLink(pdh, entry.path)),
          el("td", { class: "size" }, size(entry.size))))))
        : el("p", { class: "empty" }, "The output collection is empty."));
  }

  selectLog(name) {
    this.logs.select(name);
  }

  onEvent(event) {
    if (event.job_uuid === this.uuid || this.children.has(event.job_uuid)) {
      this.refresher.rows(event.job_uuid);
    } else {
      this.refresher.all();  // perhaps a new child
    }
  }

  tick() {
    this.children.tick();
    if (this.job && this.job.state === "Running") {
      const cell = this.details.querySelector('[data-field="duration"]');
      if (cell) {
        cell.textContent = duration(jobDuration(this.job));
      }
    }
  }

  destroy() {
    this.refresher.destroy();
    this.logs.destroy();
    clearInterval(this.poller);
  }
}

function downloadLink(pdh, path) {
  const url = api.filePath(pdh, path);
  const name = path.split("/").pop();
  return el("a", {
    href: url, download: name, class: "download",
    onclick: (event) => {
      event.preventDefault();
      api.download(url, name).catch((error) => alert(`Download failed: ${error.message}`));
    },
  }, path);
}

function timing(job, field) {
  const value = job[field];
  return value === null ? "—" : el("time", { datetime: isoTime(value), title: isoTime(value) },
    time(value));
}

function detailRows(job) {
  const spec = job.spec;
  const rows = [
    ["State", el("span", {}, stateBadge(job.state, job.exit_code)), "state"],
    ["UUID", el("code", {}, job.uuid), "uuid"],
    ["Created", timing(job, "created_at"), "created"],
    ["Started", timing(job, "started_at"), "started"],
    ["Finished", timing(job, "finished_at"), "finished"],
    ["Duration", duration(jobDuration(job)) || "—", "duration"],
    ["Exit code", job.exit_code === null ? "—" : String(job.exit_code), "exit_code"],
  ];
  if (job.reused_job_uuid) {
    rows.push(["Reuse", el("span", {}, reuseMarker(job), " ",
      el("a", { href: `#/jobs/${job.reused_job_uuid}`, class: "reused-link" },
        job.reused_job_uuid)), "reuse"]);
  }
  if (job.queue_reason) {
    rows.push(["Waiting", job.queue_reason, "queue_reason"]);
  }
  if (job.peer_id) {
    rows.push(["For", `a person of cluster ${job.peer_id} (${job.remote_owner})`, "peer"]);
  }
  if (job.failure_reason) {
    rows.push(["Failure", el("span", { class: "failure" }, job.failure_reason), "failure"]);
  }
  if (job.cancel_requested && !FINAL_STATES.has(job.state)) {
    rows.push(["Cancel", "requested", "cancel"]);
  }
  if (spec.image) {
    rows.push(["Image", el("span", {}, el("code", {}, spec.image),
      job.image_digest ? el("code", { class: "digest" }, job.image_digest) : ""), "image"]);
  }
  rows.push(
    ["Command", el("code", { class: "command" }, shellJoin(spec.command)), "command"],
    ["Resources", `${plural(spec.cores, "core")}, ${size(spec.ram)} RAM` +
      (spec.gpus ? `, ${plural(spec.gpus, "GPU")}` : "") +
      (spec.time_limit ? `, limit ${duration(spec.time_limit)}` : ""), "resources"],
  );
  if (job.output_pdh) {
    rows.push(["Output", el("code", {}, job.output_pdh), "output"]);
  }
  if (job.log_pdh) {
    rows.push(["Logs", el("code", {}, job.log_pdh), "log"]);
  }
  return rows;
}
