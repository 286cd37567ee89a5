// A job's logs (worker.txt, stdout.txt, stderr.txt), one shown at a time, followed while
// the job runs: each read asks for the text after the offset the last read ended at.

import * as api from "./api.js";
import { el } from "./format.js";

export const LOG_NAMES = ["stdout.txt", "stderr.txt", "worker.txt"];
const POLL_MS = 700;
const MAX_SHOWN = 4 << 20;  // characters kept on the page; older text is dropped

export class LogPanel {
  constructor(uuid, name, onSelect, onError) {
    this.uuid = uuid;
    this.onError = onError;
    this.tabs = new Map(LOG_NAMES.map((log) => [log, el("a", {
      href: `#/jobs/${uuid}/logs/${log}`, class: "tab", role: "tab", dataset: { log },
      onclick: (event) => {
        event.preventDefault();
        onSelect(log);
      },
    }, log)]));
    this.status = el("span", { class: "log-status" });
    this.text = el("pre", { class: "log", id: "log-text", tabindex: "0" });
    this.element = el("section", { class: "logs" },
      el("h2", {}, "Logs"),
      el("div", { class: "tabs", role: "tablist" }, [...this.tabs.values()], this.status),
      this.text);
    this.timer = null;
    this.reading = false;
    this.again = false;
    this.select(name);
  }

  select(name) {
    const log = LOG_NAMES.includes(name) ? name : LOG_NAMES[0];
    for (const [tabName, tab] of this.tabs) {
      tab.classList.toggle("selected", tabName === log);
      tab.setAttribute("aria-selected", String(tabName === log));
    }
    this.name = log;
    this.offset = 0;
    this.final = false;
    this.generation = (this.generation || 0) + 1;
    this.text.textContent = "";
    this.text.dataset.log = log;
    this.text.dataset.final = "false";
    this.setStatus("loading…");
    this.poke();
  }

  setStatus(text) {
    this.status.textContent = text;
  }

  // Read now (the job changed, or a new log was selected).
  poke() {
    if (this.reading) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.read();
  }

  async read() {
    if (this.destroyed || this.final) {
      return;
    }
    this.reading = true;
    const generation = this.generation;
    try {
      const chunk = await api.get(`${api.jobPath(this.uuid)}/logs/${this.name}?offset=${this.offset}`);
      if (generation === this.generation) {
        this.show(chunk);
      }
    } catch (error) {
      this.setStatus("cannot read the log");
      this.onError(error);
    } finally {
      this.reading = false;
    }
    if (this.destroyed || this.final) {
      return;
    }
    if (this.again) {
      this.again = false;
      this.read();
    } else {
      this.timer = setTimeout(() => this.read(), POLL_MS);
    }
  }

  show(chunk) {
    const atBottom = this.text.scrollTop + this.text.clientHeight >= this.text.scrollHeight - 4;
    if (chunk.text) {
      let shown = this.text.textContent + chunk.text;
      if (shown.length > MAX_SHOWN) {
        shown = "[…]\n" + shown.slice(shown.length - MAX_SHOWN);
      }
      this.text.textContent = shown;
      if (atBottom) {
        this.text.scrollTop = this.text.scrollHeight;
      }
    }
    this.offset = chunk.offset;
    this.final = chunk.final;
    this.text.dataset.final = String(chunk.final);
    const empty = this.text.textContent === "";
    if (chunk.final) {
      this.setStatus(empty ? "empty" : "");
    } else if (chunk.source === "live") {
      this.setStatus("following the running job…");
    } else {
      this.setStatus(empty ? "no log yet" : "");
    }
  }

  destroy() {
    this.destroyed = true;
    clearTimeout(this.timer);
  }
}
