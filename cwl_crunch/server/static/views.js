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
import { JobTable, jobLink, reuseMarker } from "./table.js";

const REFRESH_MS = 250;
const PAGE = 100;
const MAX_CHILDREN = 10000;

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
        const query = uuids.map((uuid) => `uuid=${encodeURIComponent(uuid)}`).join("&");
        await this.readRows(await api.get(`/api/v1/jobs?${query}`));
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
    const job = await api.get(api.jobPath(this.uuid));
    this.showJob(job);
    await Promise.all([this.loadAncestors(job), this.loadChildren()]);
  }

  async loadAncestors(job) {
    const chain = [];
    const here = job.uuid.split("-")[0];
    let parent = job.parent_uuid;
    let foreign = null;  // a parent on another cluster: its record is there, not here
    while (parent && chain.length < 100) {
      if (parent.split("-")[0] !== here) {
        foreign = el("span", { class: "foreign-parent" },
          `${parent} (on cluster ${parent.split("-")[0]})`);
        break;
      }
      const record = await api.get(api.jobPath(parent));
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
    const jobs = await api.get(`/api/v1/jobs?parent=${encodeURIComponent(this.uuid)}&limit=${MAX_CHILDREN}`);
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
      ...[stateBadge(job.state, job.exit_code)].flat());
    this.title.dataset.state = job.state;
    this.details.replaceChildren(...detailRows(job).flatMap(([term, value, key]) => [
      el("dt", {}, term), el("dd", { dataset: { field: key } }, value)]));
    if (job.output_pdh && this.outputShown !== job.output_pdh) {
      this.outputShown = job.output_pdh;
      this.loadOutput(job.output_pdh).catch(this.onError);
    }
    this.logs.poke();
  }

  async loadOutput(pdh) {
    const entries = await api.get(`${api.collectionPath(pdh)}/entries`);
    const files = entries.filter((entry) => entry.kind === "file");
    this.output.replaceChildren(el("h2", {}, "Output"),
      el("p", { class: "pdh" }, el("code", {}, pdh)),
      files.length ? el("table", { class: "files" },
        el("thead", {}, el("tr", {}, el("th", {}, "File"), el("th", {}, "Size"))),
        el("tbody", {}, files.map((entry) => el("tr", {},
          el("td", {}, downloadLink(pdh, entry.path)), el("td", { class: "size" }, size(entry.size))))))
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
