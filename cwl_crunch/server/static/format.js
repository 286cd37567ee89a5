// Small helpers: building elements, human durations, sizes and times.

// el("a", {href: "#/", class: "x"}, "text", child...): text is always set as text.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    if (name === "dataset") {
      Object.assign(node.dataset, value);
    } else if (name.startsWith("on")) {
      node.addEventListener(name.slice(2), value);
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child instanceof Node ? child : String(child));
    }
  }
  return node;
}

// "0.4 s", "1.2 s", "42 s", "3 min 5 s", "25 min", "2 h 5 min", "3 d 4 h".
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) {
    return "";
  }
  const s = Math.max(seconds, 0);
  if (s < 9.95) {
    return `${s.toFixed(1)} s`;
  }
  if (s < 59.5) {
    return `${Math.round(s)} s`;
  }
  const minutes = Math.floor(s / 60);
  if (minutes < 10) {
    const rest = Math.floor(s - minutes * 60);
    return rest ? `${minutes} min ${rest} s` : `${minutes} min`;
  }
  if (minutes < 60) {
    return `${minutes} min`;
  }
  const hours = Math.floor(minutes / 60);
  if (hours < 24) {
    const rest = minutes - hours * 60;
    return rest ? `${hours} h ${rest} min` : `${hours} h`;
  }
  const days = Math.floor(hours / 24);
  const rest = hours - days * 24;
  return rest ? `${days} d ${rest} h` : `${days} d`;
}

// Seconds a job ran (or has been running), or null before it started.
export function jobDuration(job, now = Date.now() / 1000) {
  if (job.started_at === null || job.started_at === undefined) {
    return null;
  }
  return (job.finished_at ?? now) - job.started_at;
}

export function size(bytes) {
  if (bytes < 1024) {
    return `${bytes} B`;
  }
  let value = bytes;
  for (const unit of ["KiB", "MiB", "GiB", "TiB"]) {
    value /= 1024;
    if (value < 1024 || unit === "TiB") {
      return `${value.toFixed(value < 10 ? 1 : 0)} ${unit}`;
    }
  }
  return `${bytes} B`;
}

function pad(number) {
  return String(number).padStart(2, "0");
}

// "14:03:07" today, "2024-05-01 14:03:07" another day (local time).
export function time(seconds) {
  if (seconds === null || seconds === undefined) {
    return "";
  }
  const date = new Date(seconds * 1000);
  const clock = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  const today = new Date();
  if (date.toDateString() === today.toDateString()) {
    return clock;
  }
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${clock}`;
}

export function isoTime(seconds) {
  return seconds === null || seconds === undefined ? "" : new Date(seconds * 1000).toISOString();
}

// A command as a shell would need it typed.
export function shellJoin(words) {
  return words.map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word
    : `'${word.replaceAll("'", "'\"'\"'")}'`)).join(" ");
}

export const FINAL_STATES = new Set(["Complete", "Failed", "Cancelled"]);

// The state, and the exit code when a job completed with a non-zero one (its command
// ran to its end, but said it failed).
export function stateBadge(state, exitCode = null) {
  const badge = el("span", { class: `state state-${state}` }, state);
  if (state === "Complete" && exitCode !== null && exitCode !== 0) {
    return [badge, el("span", { class: "exit-nonzero", title: "non-zero exit code" },
      ` exit ${exitCode}`)];
  }
  return badge;
}

export function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}
