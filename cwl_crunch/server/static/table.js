// A table of jobs, one row per job, updated in place: rows are keyed by job UUID, so a
// refresh changes only the cells whose values changed (and a row being clicked stays).

import * as api from "./api.js";
import {
  duration, el, FINAL_STATES, isoTime, jobDuration, stateBadge, time,
} from "./format.js";

const COLUMNS = ["Name", "State", "Created", "Duration", "Reuse", "Failure"];

export function jobLink(job) {
  return el("a", { href: `#/jobs/${job.uuid}`, class: "job-link" }, job.spec.name || "(unnamed)");
}

// "on <cluster>" for a job of another cluster than this page's.
export function clusterMark(uuid) {
  return api.isRemote(uuid)
    ? [" ", el("span", { class: "cluster", title: `ran on cluster ${api.clusterOf(uuid)}` },
      `on ${api.clusterOf(uuid)}`)]
    : [];
}

export function reuseMarker(job) {
  if (!job.reused_job_uuid) {
    return "";
  }
  const what = FINAL_STATES.has(job.state) ? "reused" : "joined";
  return el("a", {
    href: `#/jobs/${job.reused_job_uuid}`, class: "reuse",
    title: `${what} the work of job ${job.reused_job_uuid}`,
  }, `↻ ${what}`);
}

export class JobTable {
  constructor(emptyText) {
    this.rows = new Map();
    this.body = el("tbody");
    this.empty = el("p", { class: "empty" }, emptyText);
    this.table = el("table", { class: "jobs" },
      el("thead", {}, el("tr", {}, COLUMNS.map((name) => el("th", { scope: "col" }, name)))),
      this.body);
    this.element = el("div", { class: "jobs-wrap" }, this.table, this.empty);
    this.showEmpty();
  }

  has(uuid) {
    return this.rows.has(uuid);
  }

  showEmpty() {
    this.empty.hidden = this.rows.size > 0;
    this.table.hidden = this.rows.size === 0;
  }

  // The whole listing, in order: adds, updates, reorders and removes rows.
  replaceAll(jobs) {
    const keep = new Set(jobs.map((job) => job.uuid));
    for (const [uuid, row] of this.rows) {
      if (!keep.has(uuid)) {
        row.element.remove();
        this.rows.delete(uuid);
      }
    }
    jobs.forEach((job, index) => {
      const row = this.row(job);
      if (this.body.children[index] !== row.element) {
        this.body.insertBefore(row.element, this.body.children[index] || null);
      }
    });
    this.showEmpty();
  }

  // Some jobs changed: update the rows they have (others are ignored).
  updateSome(jobs) {
    for (const job of jobs) {
      if (this.rows.has(job.uuid)) {
        this.row(job);
      }
    }
  }

  row(job) {
    let row = this.rows.get(job.uuid);
    if (!row) {
      const cells = Object.fromEntries(["name", "state", "created", "duration", "reuse",
        "failure"].map((name) => [name, el("td", { class: `col-${name}` })]));
      const element = el("tr", { dataset: { uuid: job.uuid } }, Object.values(cells));
      row = { element, cells, job: null, shown: {} };
      this.rows.set(job.uuid, row);
    }
    row.job = job;
    this.fill(row);
    return row;
  }

  fill(row) {
    const job = row.job;
    row.element.dataset.state = job.state;
    this.set(row, "name", `${job.spec.name}|${job.uuid}`, () => [jobLink(job),
      ...clusterMark(job.uuid), el("span", { class: "uuid" }, job.uuid)]);
    this.set(row, "state", `${job.state}|${job.exit_code}`,
      () => stateBadge(job.state, job.exit_code));
    this.set(row, "created", job.created_at, () => el("time",
      { datetime: isoTime(job.created_at), title: isoTime(job.created_at) }, time(job.created_at)));
    this.set(row, "duration", duration(jobDuration(job)), () => duration(jobDuration(job)));
    this.set(row, "reuse", `${job.reused_job_uuid}|${job.state}`, () => reuseMarker(job));
    this.set(row, "failure", job.failure_reason, () => job.failure_reason || "");
  }

  set(row, name, key, make) {
    if (row.shown[name] === key) {
      return;
    }
    row.shown[name] = key;
    row.cells[name].replaceChildren(...[make()].flat());
  }

  // Running jobs' durations grow while the page is open.
  tick() {
    for (const row of this.rows.values()) {
      if (row.job.state === "Running") {
        this.set(row, "duration", duration(jobDuration(row.job)),
          () => duration(jobDuration(row.job)));
      }
    }
  }
}
