// The page: a token form, then the view the URL fragment names ("#/" the top-level
// jobs, "#/jobs/<uuid>" one job, "#/jobs/<uuid>/logs/<name>" with that log shown), kept
// up to date by the job event stream. The back button moves between views.

import * as api from "./api.js";
import { JobView, TopView } from "./views.js";

const $ = (id) => document.getElementById(id);
let view = null;
let shown = null;  // {kind, uuid} of the view on the page
let follower = null;
let ticker = null;

function route() {
  const path = location.hash.replace(/^#/, "").split("?")[0];
  const match = path.match(/^\/jobs\/([^/]+)(?:\/logs\/([^/]+))?\/?$/);
  if (match) {
    return { kind: "job", uuid: decodeURIComponent(match[1]),
      log: match[2] ? decodeURIComponent(match[2]) : null };
  }
  return { kind: "top" };
}

function showError(error) {
  if (error instanceof api.AuthError) {
    logOut(`The server refused the token: ${error.message}`);
    return;
  }
  const banner = $("error");
  banner.textContent = error.message || String(error);
  banner.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

async function render() {
  const target = route();
  if (view && shown.kind === "job" && target.kind === "job" && shown.uuid === target.uuid) {
    view.selectLog(target.log);  // the same job, another log: keep the view
    return;
  }
  if (view) {
    view.destroy();
  }
  clearError();
  const container = $("view");
  view = target.kind === "job" ? new JobView(container, target.uuid, target.log, showError)
    : new TopView(container, showError);
  shown = target;
  const loading = view;
  try {
    await loading.load();
  } catch (error) {
    if (loading === view) {
      showError(error);
    }
  }
}

function setLive(status) {
  const live = $("live");
  live.dataset.status = status;
  live.textContent = { live: "live", reconnecting: "reconnecting…", off: "offline" }[status];
}

function logOut(message = "") {
  api.setToken(null);
  if (follower) {
    follower.stop();
    follower = null;
  }
  if (view) {
    view.destroy();
    view = null;
  }
  clearInterval(ticker);
  clearError();
  $("view").replaceChildren();
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("token").focus();
}

async function start() {
  $("login").hidden = true;
  $("logout").hidden = false;
  const mine = new api.EventFollower((event) => view && view.onEvent(event), setLive,
    showError);
  follower = mine;
  ticker = setInterval(() => view && view.tick(), 1000);
  await render();
  if (follower !== mine) {
    return;  // the token was refused meanwhile
  }
  try {
    await mine.start();
  } catch (error) {
    if (follower === mine) {
      showError(error);
    }
  }
}

async function showCluster() {
  try {
    const response = await fetch("/api/v1/cluster");
    const info = await response.json();
    $("cluster").textContent = `cluster ${info.cluster_id}`;
  } catch {
    $("cluster").textContent = "";
  }
}

function main() {
  api.takeTokenFromFragment();
  showCluster();
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    api.setToken($("token").value);
    $("token").value = "";
    start();
  });
  $("logout").addEventListener("click", () => logOut());
  window.addEventListener("hashchange", () => {
    api.takeTokenFromFragment();
    if (follower) {
      render();
    } else if (api.token()) {
      start();
    }
  });
  if (api.token()) {
    start();
  } else {
    logOut();
  }
}

main();
