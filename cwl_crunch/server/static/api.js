// Talking to the cwl-crunch API: the token, JSON calls, downloads and job events.
// Every call sends "Authorization: Bearer <token>"; the token lives in sessionStorage
// (this tab only) and may arrive once in the URL fragment (#token=..., never sent to
// the server), from where it is removed at once.

const TOKEN_KEY = "cwl-crunch-token";

export class AuthError extends Error {}

export class ApiError extends Error {
  constructor(status, kind, detail) {
    super(`${detail} (${status}${kind ? " " + kind : ""})`);
    this.status = status;
    this.kind = kind;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) {
    sessionStorage.setItem(TOKEN_KEY, value.trim());
  } else {
    sessionStorage.removeItem(TOKEN_KEY);
  }
}

// Takes "token=..." out of the fragment ("#token=T", "#/jobs/U?token=T"), keeps it, and
// rewrites the URL without it so it does not stay in the history.
export function takeTokenFromFragment() {
  const hash = location.hash.replace(/^#/, "");
  const query = hash.indexOf("?");
  const route = query >= 0 ? hash.slice(0, query) : (hash.startsWith("token=") ? "" : hash);
  const params = new URLSearchParams(query >= 0 ? hash.slice(query + 1)
    : (hash.startsWith("token=") ? hash : ""));
  const found = params.get("token");
  if (!found) {
    return;
  }
  setToken(found);
  params.delete("token");
  const rest = params.toString();
  const fragment = route + (rest ? "?" + rest : "");
  history.replaceState(null, "", location.pathname + location.search + (fragment ? "#" + fragment : "#/"));
}

function headers() {
  const value = token();
  return value ? { Authorization: `Bearer ${value}` } : {};
}

async function failure(response) {
  let kind = "";
  let detail = response.statusText;
  try {
    const body = await response.json();
    kind = body.error || "";
    detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch {
    // not JSON: keep the status text
  }
  if (response.status === 401) {
    return new AuthError(detail);
  }
  return new ApiError(response.status, kind, detail);
}

export async function get(path, signal) {
  const response = await fetch(path, { headers: headers(), signal, cache: "no-store" });
  if (!response.ok) {
    throw await failure(response);
  }
  return response.json();
}

// Federation: jobs of other clusters (a step handed to a peer, and what it ran there)
// are read through this cluster's /api/v1/peers/<id>/... routes, with its peer token.
let home = null;

export async function loadHome() {
  if (home === null) {
    home = (await get("/api/v1/cluster")).cluster_id;
  }
  return home;
}

export function clusterOf(uuid) {
  return uuid.split("-")[0];
}

let peers = null;

// The ids of this cluster's peers (whose jobs the page can read through it).
export async function peerIds() {
  if (peers === null) {
    peers = new Set((await get("/api/v1/peers")).map((peer) => peer.cluster_id));
  }
  return peers;
}

// Whether the job is another cluster's (its UUID's prefix is not this cluster's).
export function isRemote(uuid) {
  return home !== null && clusterOf(uuid) !== home;
}

export function jobPath(uuid) {
  if (isRemote(uuid)) {
    return `/api/v1/peers/${clusterOf(uuid)}/jobs/${encodeURIComponent(uuid)}`;
  }
  return `/api/v1/jobs/${encodeURIComponent(uuid)}`;
}

// The peer a step of this cluster was handed to (its remote runner is there), or null.
export function handedTo(job) {
  const command = job.spec.command;
  return command[0] === "cwl-crunch-runner" && command[1] === "--on-cluster" ? command[2] : null;
}

// A job's children, newest first: here, and on the peer for a step handed there (or
// for a job of the peer).
export async function childrenOf(job, limit) {
  const parent = encodeURIComponent(job.uuid);
  if (isRemote(job.uuid)) {
    return get(`/api/v1/peers/${clusterOf(job.uuid)}/jobs?parent=${parent}&limit=${limit}`);
  }
  const local = await get(`/api/v1/jobs?parent=${parent}&limit=${limit}`);
  const peer = handedTo(job);
  if (!peer) {
    return local;
  }
  return [...await get(`/api/v1/peers/${peer}/jobs?parent=${parent}&limit=${limit}`), ...local];
}

// Records of jobs by UUID: this cluster's in one request, other clusters' one by one.
export async function jobsByUuid(uuids) {
  const local = uuids.filter((uuid) => !isRemote(uuid));
  const query = local.map((uuid) => `uuid=${encodeURIComponent(uuid)}`).join("&");
  const found = local.length ? await get(`/api/v1/jobs?${query}`) : [];
  for (const uuid of uuids.filter(isRemote)) {
    found.push(await get(jobPath(uuid)));
  }
  return found;
}

// A portable data hash ("<sha256>+<length>") as a path segment: "+" is fine there.
export function collectionPath(pdh) {
  return `/api/v1/collections/${encodeURIComponent(pdh).replace("%2B", "+")}`;
}

export function filePath(pdh, path) {
  const parts = path.split("/").map(encodeURIComponent).join("/");
  return `${collectionPath(pdh)}/files/${parts}`;
}

// A link cannot send the Authorization header: fetch the file with it and hand the
// browser the bytes as a download under the file's name.
export async function download(url, filename) {
  const response = await fetch(url, { headers: headers() });
  if (!response.ok) {
    throw await failure(response);
  }
  const blob = await response.blob();
  const objectUrl = URL.createObjectURL(blob);
  const anchor = document.createElement("a");
  anchor.href = objectUrl;
  anchor.download = filename;
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
  setTimeout(() => URL.revokeObjectURL(objectUrl), 60_000);
}

// Job events -------------------------------------------------------------------------

function parseEvents(buffer, onMessage) {
  // Server-sent events: blocks separated by a blank line; "data:" lines hold the JSON.
  const blocks = buffer.replace(/\r\n?/g, "\n").split("\n\n");
  const rest = blocks.pop();
  for (const block of blocks) {
    const data = block.split("\n").filter((line) => line.startsWith("data:"))
      .map((line) => line.slice(5).trimStart()).join("\n");
    if (data) {
      onMessage(JSON.parse(data));
    }
  }
  return rest;
}

// Stream connections that fail one after the other before the long poll is used instead.
const STREAM_TRIES = 2;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Follows /events/stream (fetch + ReadableStream, since EventSource cannot send a
// header), resuming after the last event seen; falls back to the long poll /events when
// streaming does not work (a proxy that buffers). onEvent(event); onStatus("live"|...).
export class EventFollower {
  constructor(onEvent, onStatus, onAuthError) {
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.onAuthError = onAuthError;
    this.after = null;
    this.controller = null;
    this.stopped = true;
  }

  async start() {
    this.stopped = false;
    const { last } = await get("/api/v1/events/last");
    this.after = last;
    this.loop();
  }

  stop() {
    this.stopped = true;
    if (this.controller) {
      this.controller.abort();
    }
    this.onStatus("off");
  }

  deliver(event) {
    this.after = Math.max(this.after, event.id);
    this.onEvent(event);
  }

  async loop() {
    let failures = 0;
    while (!this.stopped) {
      try {
        const got = failures < STREAM_TRIES ? await this.stream() : await this.poll();
        failures = got ? 0 : failures + 1;
      } catch (error) {
        if (this.stopped || error.name === "AbortError") {
          return;
        }
        if (error instanceof AuthError) {
          this.onAuthError(error);
          return;
        }
        failures += 1;
      }
      if (!this.stopped) {
        this.onStatus("reconnecting");
        await sleep(Math.min(500 * 2 ** Math.min(failures, 4), 8000));
      }
    }
  }

  // One stream connection; whether it delivered anything before it ended.
  async stream() {
    this.controller = new AbortController();
    const response = await fetch(`/api/v1/events/stream?after=${this.after}`, {
      headers: headers(), signal: this.controller.signal, cache: "no-store",
    });
    if (!response.ok) {
      throw await failure(response);
    }
    this.onStatus("live");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let got = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        return got;
      }
      got = true;  // a comment (the greeting, heartbeats) counts: the stream works
      buffer = parseEvents(buffer + value, (event) => this.deliver(event));
    }
  }

  // Long polls until one fails (the first one does not wait: it shows the poll works).
  async poll() {
    this.controller = new AbortController();
    for (let wait = 0; ; wait = 20) {
      const found = await get(`/api/v1/events?after=${this.after}&timeout=${wait}`,
        this.controller.signal);
      this.onStatus("live");
      for (const event of found.events) {
        this.deliver(event);
      }
      this.after = Math.max(this.after, found.last);
      if (this.stopped) {
        return true;
      }
    }
  }
}
