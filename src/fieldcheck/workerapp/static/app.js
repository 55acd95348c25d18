// fieldcheck for workers: a phone web app served by fieldcheck itself (no build step, no CDN).
//
// Screens are drawn from the JSON API. What the worker captures is kept in IndexedDB until the
// server has it: photos wait there when the network is gone and go out when it comes back, and
// every submission's Idempotency-Key is stored before its first attempt, so a retry can never
// make a second submission. Texts come from the server's catalogues (French or English).

const API = "/api/v1";
const POLL_MS = 700;
const SYNC_MS = 15000;
const POOR_ACCURACY_M = 100; // as the server's location_accuracy check
const ACCURACY_ALLOWANCE_CAP_M = 150; // as the server's location check
const state = {
  token: localStorage.getItem("fc.token"),
  email: localStorage.getItem("fc.email"),
  lang: localStorage.getItem("fc.lang") || ((navigator.language || "en").toLowerCase().startsWith("fr") ? "fr" : "en"),
  device: localStorage.getItem("fc.device") || newId(),
  texts: {},
  position: null,
  nearby: [],
  timers: [],
  syncing: false,
};
localStorage.setItem("fc.device", state.device);

function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// Texts ----------------------------------------------------------------------------------------
async function loadTexts(lang) {
  const answer = await fetch(`/app/texts/${lang}.json`);
  state.texts = await answer.json();
  document.documentElement.lang = lang;
}

function t(key, params = {}) {
  const template = state.texts[key] || key;
  return template.replace(/\{(\w+)\}/g, (_, name) => {
    const value = params[name];
    if (typeof value === "number") return number(value);
    return value === undefined ? `{${name}}` : String(value);
  });
}

function number(value, digits) {
  const options = digits === undefined ? {} : { minimumFractionDigits: digits, maximumFractionDigits: digits };
  return new Intl.NumberFormat(state.lang, options).format(value);
}

function money(cents, currency) {
  return new Intl.NumberFormat(state.lang, { style: "currency", currency }).format(cents / 100);
}

function when(iso) {
  return new Intl.DateTimeFormat(state.lang, { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
}

// Elements -------------------------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function show(...nodes) {
  for (const timer of state.timers) clearInterval(timer);
  state.timers = [];
  state.onChange = null;
  const main = document.getElementById("main");
  main.replaceChildren(...nodes.flat(2).filter((node) => node !== null && node !== undefined && node !== false));
  const heading = main.querySelector("h1");
  if (heading) { heading.tabIndex = -1; heading.focus({ preventScroll: true }); }
  renderNav();
}

// Previews of photos waiting on the phone: one object URL each, released once the photo is gone.
const previews = new Map();
function previewOf(photo) {
  if (!previews.has(photo.localId)) previews.set(photo.localId, URL.createObjectURL(photo.blob));
  return previews.get(photo.localId);
}
function forgetPreview(localId) {
  if (previews.has(localId)) { URL.revokeObjectURL(previews.get(localId)); previews.delete(localId); }
}
function keepPreviews(localIds) {
  for (const localId of [...previews.keys()]) if (!localIds.includes(localId)) forgetPreview(localId);
}

function notice(text, kind = "info") {
  return el("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

function field(label, input, hint) {
  const id = input.id || `f-${newId().slice(0, 8)}`;
  input.id = id;
  return el("div", { class: "field" }, el("label", { for: id }, label), input, hint ? el("p", { class: "hint" }, hint) : null);
}

function outcomeTag(outcome) {
  const key = { pass: "outcome_pass", warn: "outcome_warn", fail: "outcome_fail" }[outcome] || outcome;
  return el("span", { class: `tag ${outcome}` }, t(key));
}

function statusTag(status) {
  return el("span", { class: `tag ${status}` }, t(`status_${status}`));
}

// The API --------------------------------------------------------------------------------------
class Offline extends Error {}

async function api(method, path, { body, headers = {}, raw } = {}) {
  const sent = { "Accept-Language": state.lang, Accept: "application/json", ...headers };
  if (state.token) sent.Authorization = `Bearer ${state.token}`;
  if (body !== undefined && !raw) sent["Content-Type"] = "application/json";
  let answer;
  try {
    answer = await fetch(path.startsWith("http") ? path : API + path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
    });
  } catch (error) {
    throw new Offline(String(error));
  }
  let data = null;
  const type = answer.headers.get("content-type") || "";
  if (type.includes("json")) data = await answer.json().catch(() => null);
  if (answer.status === 401 && state.token && !path.startsWith("/auth")) {
    signOutLocally();
    location.hash = "#/signin";
  }
  return { ok: answer.ok, status: answer.status, data };
}

function problemText(answer) {
  return (answer.data && (answer.data.detail || answer.data.title)) || t("error_generic", { status: answer.status });
}

function signOutLocally() {
  state.token = null;
  localStorage.removeItem("fc.token");
}

// IndexedDB: what waits for the network ---------------------------------------------------------
let dbPromise = null;
function db() {
  dbPromise ||= new Promise((resolve, reject) => {
    const request = indexedDB.open("fieldcheck-app", 1);
    request.onupgradeneeded = () => {
      const base = request.result;
      base.createObjectStore("photos", { keyPath: "localId" }).createIndex("assignment", "assignmentId");
      base.createObjectStore("submissions", { keyPath: "assignmentId" });
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  return dbPromise;
}

async function store(name, mode, action) {
  const base = await db();
  return new Promise((resolve, reject) => {
    const tx = base.transaction(name, mode);
    const result = action(tx.objectStore(name));
    tx.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
    tx.onerror = () => reject(tx.error);
  });
}

const photosOf = (assignmentId) => store("photos", "readonly", (s) => s.index("assignment").getAll(assignmentId));
const allPhotos = () => store("photos", "readonly", (s) => s.getAll());
const putPhoto = (photo) => store("photos", "readwrite", (s) => s.put(photo));
const dropPhoto = (localId) => store("photos", "readwrite", (s) => s.delete(localId));
const submissionOf = (assignmentId) => store("submissions", "readonly", (s) => s.get(assignmentId));
const allSubmissions = () => store("submissions", "readonly", (s) => s.getAll());
const putSubmission = (item) => store("submissions", "readwrite", (s) => s.put(item));
const dropSubmission = (assignmentId) => store("submissions", "readwrite", (s) => s.delete(assignmentId));

// Sending what waits: photos first (slot, upload, "uploaded", checks), then submissions ----------
// One tab at a time sends (a Web Lock), and a photo's record is changed in one IndexedDB
// transaction that reads it first: a worker who deletes a photo while it is being sent wins.
async function sync() {
  if (!state.token) return;
  if (navigator.locks) return navigator.locks.request("fieldcheck-sync", { ifAvailable: true }, (lock) => (lock ? syncNow() : null));
  return syncNow();
}

async function syncNow() {
  if (state.syncing) return;
  state.syncing = true;
  try {
    for (const photo of await allPhotos()) if (photo.owner === state.email) await advancePhoto(photo);
    for (const item of await allSubmissions()) if (item.owner === state.email) await advanceSubmission(item);
  } catch (error) {
    if (!(error instanceof Offline)) console.error(error);
  } finally {
    state.syncing = false;
    changed();
  }
}

let redraw = null;
function changed() {
  renderWaiting();
  clearTimeout(redraw);
  redraw = setTimeout(() => { if (state.onChange) state.onChange(); }, 50);
}

function patchPhoto(localId, changes) {
  return db().then((base) => new Promise((resolve, reject) => {
    const tx = base.transaction("photos", "readwrite");
    const photos = tx.objectStore("photos");
    let result = null;
    const request = photos.get(localId);
    request.onsuccess = () => {
      const current = request.result;
      if (!current) return;
      if (current.state === "deleting" && changes.state !== "deleting") {
        if (changes.photoId) current.photoId = changes.photoId; // its server place is deleted too
      } else {
        Object.assign(current, changes);
      }
      result = current;
      photos.put(current);
    };
    tx.oncomplete = () => { changed(); resolve(result); };
    tx.onerror = () => reject(tx.error);
  }));
}

const TRANSIENT = (answer) => answer.status >= 500 || [401, 408, 425, 429].includes(answer.status)
  || (answer.data && answer.data.code === "request_in_progress");

async function advancePhoto(photo) {
  const base = `/assignments/${photo.assignmentId}/photos`;
  if (photo.state === "deleting") {
    if (photo.photoId) {
      const answer = await api("DELETE", `${base}/${photo.photoId}`);
      if (!answer.ok && answer.status !== 404 && answer.status !== 409) return;
    }
    forgetPreview(photo.localId);
    await dropPhoto(photo.localId);
    return;
  }
  if (photo.state === "queued") {
    const answer = await api("POST", base, { body: { content_type: photo.type, size_bytes: photo.size } });
    if (!answer.ok) return failPhoto(photo, answer);
    photo = await patchPhoto(photo.localId, { photoId: answer.data.photo_id, upload: answer.data.upload, state: "slot" });
    if (!photo || photo.state === "deleting") return;
  }
  if (photo.state === "slot") {
    let answer;
    try {
      const headers = { ...photo.upload.headers };
      delete headers["Content-Length"]; // the browser sets it from the file
      answer = await fetch(photo.upload.url, { method: "PUT", headers, body: photo.blob });
    } catch (error) {
      throw new Offline(String(error)); // broke half-way: the object is not there, send it again later
    }
    if (answer.status === 412) {
      // An earlier attempt arrived after all.
    } else if (answer.status === 403 || answer.status === 400) {
      // The signed link ran out: drop this place and ask for another one.
      await api("DELETE", `${base}/${photo.photoId}`);
      await patchPhoto(photo.localId, { photoId: null, upload: null, state: "queued" });
      return;
    } else if (!answer.ok) {
      return;
    }
    photo = await patchPhoto(photo.localId, { state: "sent" });
    if (!photo || photo.state === "deleting") return;
  }
  if (photo.state === "sent") {
    const answer = await api("POST", `${base}/${photo.photoId}/uploaded`);
    if (!answer.ok) return failPhoto(photo, answer);
    photo = await patchPhoto(photo.localId, { state: "checking" });
    if (!photo || photo.state === "deleting") return;
  }
  if (photo.state === "checking") {
    const answer = await api("GET", `${base}/${photo.photoId}`);
    if (!answer.ok) return failPhoto(photo, answer);
    if (answer.data.check_status === "pending") return;
    await patchPhoto(photo.localId, {
      state: answer.data.check_status === "checked" ? "checked" : "unchecked",
      checks: answer.data.checks,
      thumbnail: answer.data.thumbnail_url,
    });
  }
}

async function failPhoto(photo, answer) {
  if (TRANSIENT(answer)) return; // tried again at the next round
  await patchPhoto(photo.localId, { state: "error", error: problemText(answer) });
}

const UPLOADED = ["sent", "checking", "checked", "unchecked"];

async function advanceSubmission(item) {
  if (item.state !== "waiting") return;
  if (!item.body) {
    const photos = (await photosOf(item.assignmentId)).filter((p) => p.state !== "deleting");
    if (photos.some((p) => p.state === "error")) {
      Object.assign(item, { state: "failed", error: t("submit_photo_error") });
      return putSubmission(item);
    }
    // In storage is enough: the checks run again at submission when they have not finished.
    if (!photos.length || photos.some((p) => !UPLOADED.includes(p.state))) return;
    item.body = { ...item.draft, photo_ids: photos.map((p) => p.photoId) };
    await putSubmission(item); // the body is fixed before it is first sent: retries send the same
  }
  const answer = await api("POST", `/assignments/${item.assignmentId}/submit`, {
    body: item.body,
    headers: { "Idempotency-Key": item.key },
  });
  if (answer.ok) {
    await dropSubmission(item.assignmentId);
    for (const photo of await photosOf(item.assignmentId)) { forgetPreview(photo.localId); await dropPhoto(photo.localId); }
    return;
  }
  if (TRANSIENT(answer)) return;
  Object.assign(item, { state: "failed", error: problemText(answer) });
  await putSubmission(item);
}

async function renderWaiting() {
  const box = document.getElementById("waiting");
  if (!box) return;
  const photos = (await allPhotos()).filter((p) => p.owner === state.email && ["queued", "slot", "deleting"].includes(p.state));
  const submissions = (await allSubmissions()).filter((w) => w.owner === state.email && w.state === "waiting");
  const offline = !navigator.onLine;
  if (!photos.length && !submissions.length && !offline) { box.hidden = true; return; }
  box.hidden = false;
  box.textContent = [
    offline ? t("offline") : null,
    photos.length || submissions.length ? t("waiting", { photos: photos.length, submissions: submissions.length }) : null,
  ].filter(Boolean).join(" ");
}

// Geolocation ----------------------------------------------------------------------------------
function locate() {
  return new Promise((resolve, reject) => {
    if (!window.isSecureContext) return reject(new Error(t("insecure")));
    if (!navigator.geolocation) return reject(new Error(t("no_geolocation")));
    navigator.geolocation.getCurrentPosition(
      (found) => {
        state.position = { lat: found.coords.latitude, lon: found.coords.longitude, accuracy: found.coords.accuracy };
        resolve(state.position);
      },
      (error) => reject(new Error(error.code === 1 ? t("location_denied") : t("location_failed"))),
      { enableHighAccuracy: true, timeout: 20000, maximumAge: 30000 },
    );
  });
}

function metres(a, b) {
  const r = 6371008.8, rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad, dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * r * Math.asin(Math.sqrt(h));
}

function direction(from, to) {
  const rad = Math.PI / 180;
  const y = Math.sin((to.lon - from.lon) * rad) * Math.cos(to.lat * rad);
  const x = Math.cos(from.lat * rad) * Math.sin(to.lat * rad) - Math.sin(from.lat * rad) * Math.cos(to.lat * rad) * Math.cos((to.lon - from.lon) * rad);
  const bearing = (Math.atan2(y, x) / rad + 360) % 360;
  const names = ["n", "ne", "e", "se", "s", "sw", "w", "nw"];
  return { bearing, name: t(`dir_${names[Math.round(bearing / 45) % 8]}`) };
}

function distanceText(m) {
  return m < 1000 ? t("metres", { value: Math.round(m) }) : t("kilometres", { value: number(m / 1000, 1) });
}

// Screens --------------------------------------------------------------------------------------
const routes = [
  [/^#\/signin$/, signIn],
  [/^#\/signup$/, signUp],
  [/^#\/tasks$/, tasks],
  [/^#\/task\/([\w-]+)$/, task],
  [/^#\/assignment\/([\w-]+)$/, assignment],
  [/^#\/work$/, work],
  [/^#\/work\/([\w-]+)$/, workItem],
  [/^#\/earnings$/, earnings],
  [/^#\/settings$/, settings],
];

async function route() {
  const hash = location.hash || "#/tasks";
  if (!state.token && !["#/signin", "#/signup", "#/settings"].includes(hash)) { location.hash = "#/signin"; return; }
  for (const [pattern, screen] of routes) {
    const match = hash.match(pattern);
    if (match) return screen(...match.slice(1));
  }
  location.hash = "#/tasks";
}

function renderNav() {
  const nav = document.getElementById("nav");
  const here = (location.hash || "#/tasks").split("/")[1];
  const links = state.token
    ? [["tasks", "nav_tasks"], ["work", "nav_work"], ["earnings", "nav_earnings"], ["settings", "nav_settings"]]
    : [["signin", "nav_signin"], ["settings", "nav_settings"]];
  nav.replaceChildren(...links.map(([target, key]) =>
    el("a", { href: `#/${target}`, "aria-current": here === target || (here === "task" && target === "tasks") || (here === "assignment" && target === "tasks") ? "page" : null }, t(key))));
}

function signIn() {
  const email = el("input", { type: "email", autocomplete: "email", required: true, value: state.email || "" });
  const password = el("input", { type: "password", autocomplete: "current-password", required: true });
  const error = el("p", { class: "error", role: "alert" });
  show(
    el("h1", {}, t("signin_title")),
    el("form", { class: "stack", onsubmit: async (event) => {
      event.preventDefault();
      error.textContent = "";
      const answer = await tokenFor(email.value, password.value).catch(() => null);
      if (!answer) { error.textContent = t("offline_action"); return; }
      if (!answer.ok) { error.textContent = problemText(answer); return; }
      location.hash = "#/tasks";
    } },
    field(t("email"), email), field(t("password"), password), error,
    el("button", { class: "primary", type: "submit" }, t("signin_button"))),
    el("p", {}, t("no_account"), " ", el("a", { href: "#/signup" }, t("signup_link"))),
  );
}

async function tokenFor(email, password) {
  const answer = await api("POST", "/auth/token", { body: { email, password } });
  if (answer.ok) {
    state.token = answer.data.access_token;
    state.email = email;
    localStorage.setItem("fc.token", state.token);
    localStorage.setItem("fc.email", email);
    sync();
  }
  return answer;
}

function signUp() {
  const name = el("input", { type: "text", autocomplete: "name", required: true, maxlength: 100 });
  const email = el("input", { type: "email", autocomplete: "email", required: true });
  const password = el("input", { type: "password", autocomplete: "new-password", required: true, minlength: 10 });
  const error = el("p", { class: "error", role: "alert" });
  show(
    el("h1", {}, t("signup_title")),
    el("form", { class: "stack", onsubmit: async (event) => {
      event.preventDefault();
      error.textContent = "";
      const answer = await api("POST", "/auth/register", {
        body: { email: email.value, password: password.value, display_name: name.value },
      }).catch(() => null);
      if (!answer) { error.textContent = t("offline_action"); return; }
      if (!answer.ok) { error.textContent = problemText(answer); return; }
      const signed = await tokenFor(email.value, password.value);
      if (!signed.ok) { error.textContent = problemText(signed); return; }
      location.hash = "#/tasks";
    } },
    field(t("display_name"), name), field(t("email"), email), field(t("password"), password, t("password_hint")), error,
    el("button", { class: "primary", type: "submit" }, t("signup_button"))),
    el("p", {}, el("a", { href: "#/signin" }, t("have_account"))),
  );
}

async function tasks() {
  const list = el("ul", { class: "cards", "aria-live": "polite" });
  const status = el("p", { class: "muted", role: "status" }, t("locating"));
  const refresh = el("button", { type: "button", onclick: () => load() }, t("refresh"));
  show(el("div", { class: "bar" }, el("h1", {}, t("tasks_title")), refresh), status, list);
  const mine = await api("GET", "/me/assignments?status=reserved&limit=20").catch(() => null);
  if (mine && mine.ok && mine.data.items.length) {
    list.before(el("section", { class: "held" }, el("h2", {}, t("held_title")),
      el("ul", { class: "cards" }, mine.data.items.map((a) => el("li", {},
        el("a", { class: "card", href: `#/assignment/${a.id}` }, el("strong", {}, a.title), el("span", {}, a.store.name),
          el("span", { class: "muted" }, t("expires_at", { time: when(a.expires_at) }))))))));
  }
  async function load() {
    status.textContent = t("locating");
    list.replaceChildren();
    let here;
    try { here = await locate(); } catch (error) { status.textContent = error.message; return; }
    const answer = await api("GET", `/tasks/nearby?lat=${here.lat}&lon=${here.lon}&radius_m=20000&limit=50`).catch(() => null);
    if (!answer) { status.textContent = t("offline_action"); return; }
    if (!answer.ok) { status.textContent = problemText(answer); return; }
    state.nearby = answer.data.items;
    sessionStorage.setItem("fc.nearby", JSON.stringify(state.nearby));
    status.textContent = state.nearby.length ? t("tasks_found", { count: state.nearby.length, accuracy: Math.round(here.accuracy) }) : t("no_tasks");
    list.replaceChildren(...state.nearby.map((item) => {
      const way = direction(here, item.store);
      const hourly = (item.reward_cents / Math.max(item.estimated_minutes, 1)) * 60;
      return el("li", {}, el("a", { class: "card", href: `#/task/${item.task_id}` },
        el("strong", {}, item.title),
        el("span", {}, item.store.name),
        el("span", { class: "facts" },
          el("span", { class: "reward" }, money(item.reward_cents, item.currency)),
          el("span", {}, t("minutes", { value: item.estimated_minutes })),
          el("span", {}, t("per_hour", { amount: money(hourly, item.currency) }))),
        item.measured_minutes_median ? el("span", { class: "muted" }, t("took_median", { minutes: Math.round(item.measured_minutes_median) })) : null,
        el("span", { class: "muted" },
          el("span", { class: "arrow", "aria-hidden": "true", "data-bearing": Math.round(way.bearing) }, "↑"),
          " ", t("distance_direction", { distance: distanceText(item.distance_m), direction: way.name }))));
    }));
    for (const arrow of list.querySelectorAll(".arrow")) arrow.style.transform = `rotate(${arrow.dataset.bearing}deg)`;
  }
  load();
}

function task(taskId) {
  const known = state.nearby.length ? state.nearby : JSON.parse(sessionStorage.getItem("fc.nearby") || "[]");
  const item = known.find((x) => x.task_id === taskId);
  if (!item) { location.hash = "#/tasks"; return; }
  const error = el("p", { class: "error", role: "alert" });
  const hourly = (item.reward_cents / Math.max(item.estimated_minutes, 1)) * 60;
  show(
    el("a", { class: "back", href: "#/tasks" }, t("back_tasks")),
    el("h1", {}, item.title),
    el("p", { class: "facts" }, el("span", { class: "reward" }, money(item.reward_cents, item.currency)),
      el("span", {}, t("minutes", { value: item.estimated_minutes })), el("span", {}, t("per_hour", { amount: money(hourly, item.currency) }))),
    el("h2", {}, t("store")), el("p", {}, item.store.name, el("br"), item.store.address || ""),
    el("p", { class: "muted" }, distanceText(item.distance_m)),
    el("h2", {}, t("instructions")), el("p", { class: "instructions" }, item.instructions),
    item.measured_minutes_median ? el("p", { class: "muted" }, t("took_median", { minutes: Math.round(item.measured_minutes_median) })) : null,
    item.photo_rules ? el("p", {}, t("photo_rules", {
      min: item.photo_rules.min_photos, max: item.photo_rules.max_photos, side: item.photo_rules.min_short_side_px,
    })) : null,
    el("p", { class: "muted" }, t("reserve_for", { minutes: item.reservation_minutes, slots: item.slots_left })),
    error,
    el("button", { class: "primary wide", type: "button", onclick: async () => {
      error.textContent = "";
      const answer = await api("POST", `/tasks/${taskId}/reservations`).catch(() => null);
      if (!answer) { error.textContent = t("offline_action"); return; }
      if (answer.ok) { location.hash = `#/assignment/${answer.data.id}`; return; }
      if (answer.data && answer.data.code === "already_reserved") {
        const mine = await api("GET", "/me/assignments?status=reserved&limit=50");
        const held = mine.ok && mine.data.items.find((a) => a.task_id === taskId);
        if (held) { location.hash = `#/assignment/${held.id}`; return; }
      }
      error.textContent = problemText(answer);
    } }, t("reserve")),
  );
}

async function assignment(assignmentId) {
  const answer = await api("GET", `/assignments/${assignmentId}`).catch(() => null);
  const cached = JSON.parse(localStorage.getItem(`fc.a.${assignmentId}`) || "null");
  const a = answer && answer.ok ? answer.data : cached;
  if (!a) { show(notice(answer ? problemText(answer) : t("offline_action"), "error")); return; }
  localStorage.setItem(`fc.a.${assignmentId}`, JSON.stringify(a));
  if (a.status !== "reserved" && !(await submissionOf(assignmentId))) { location.hash = `#/work/${assignmentId}`; return; }
  const rules = a.photo_rules || { min_photos: 1, max_photos: 4, min_short_side_px: 0 };
  const countdown = el("p", { class: "countdown", role: "timer", "aria-live": "off" });
  const photos = el("ul", { class: "photos", "aria-live": "polite" });
  const input = el("input", { type: "file", accept: "image/*", capture: "environment", multiple: true, class: "visually-hidden", id: "capture" });
  const error = el("p", { class: "error", role: "alert" });
  const submitBox = el("div", { class: "stack" });
  input.addEventListener("change", async () => {
    const files = [...input.files];
    input.value = "";
    // The visit's first photo (kept, retaken or not) is when the worker was at the store: from the
    // reservation to it is the time it took to get there, sent with the visit (a time, never a
    // position on the way).
    if (files.length && !localStorage.getItem(`fc.arrived.${assignmentId}`)) localStorage.setItem(`fc.arrived.${assignmentId}`, String(Date.now()));
    const have = (await photosOf(assignmentId)).filter((p) => p.state !== "deleting").length;
    if (have + files.length > rules.max_photos) error.textContent = t("too_many", { count: rules.max_photos });
    for (const file of files.slice(0, Math.max(0, rules.max_photos - have))) {
      await putPhoto({
        localId: newId(), assignmentId, owner: state.email, blob: file, type: file.type || "image/jpeg",
        size: file.size, name: file.name, state: "queued", createdAt: Date.now(),
      });
    }
    await drawPhotos();
    sync();
  });
  show(
    el("a", { class: "back", href: "#/tasks" }, t("back_tasks")),
    el("h1", {}, a.title),
    countdown,
    el("p", {}, a.store.name, el("br"), a.store.address || ""),
    el("details", { open: true }, el("summary", {}, t("instructions")), el("p", { class: "instructions" }, a.instructions),
      el("p", { class: "muted" }, t("photo_rules", { min: rules.min_photos, max: rules.max_photos, side: rules.min_short_side_px }))),
    el("h2", {}, t("photos_title")),
    photos,
    el("label", { for: "capture", class: "button primary wide" }, t("take_photo")),
    input,
    error,
    submitBox,
  );
  const expires = new Date(a.expires_at).getTime();
  const tick = () => {
    const left = Math.max(0, expires - Date.now());
    const minutes = Math.floor(left / 60000), seconds = Math.floor((left % 60000) / 1000);
    countdown.textContent = left ? t("time_left", { time: `${minutes}:${String(seconds).padStart(2, "0")}` }) : t("expired");
    countdown.classList.toggle("late", left < 5 * 60000);
  };
  tick();
  state.timers.push(setInterval(tick, 1000));
  state.timers.push(setInterval(() => { sync(); }, POLL_MS * 3));

  async function drawPhotos() {
    const mine = (await photosOf(assignmentId)).filter((p) => p.state !== "deleting").sort((x, y) => x.createdAt - y.createdAt);
    photos.replaceChildren(...mine.map((photo, index) => photoCard(photo, index)));
    keepPreviews(mine.map((photo) => photo.localId));
    const pending = await submissionOf(assignmentId);
    drawSubmit(mine, pending);
  }

  function photoCard(photo, index) {
    const preview = photo.type.includes("hei") && photo.thumbnail
      ? el("img", { src: photo.thumbnail, alt: t("photo_n", { n: index + 1 }) })
      : photo.type.includes("hei")
        ? el("div", { class: "placeholder" }, "HEIC")
        : el("img", { src: previewOf(photo), alt: t("photo_n", { n: index + 1 }) });
    const problems = (photo.checks || []).filter((c) => c.outcome !== "pass");
    const status = {
      queued: t("photo_waiting"), slot: t("photo_uploading"), sent: t("photo_uploading"), checking: t("photo_checking"),
      checked: problems.length ? null : t("photo_ok"), unchecked: t("photo_unchecked"), error: photo.error,
    }[photo.state];
    return el("li", { class: `photo ${photo.state}` },
      preview,
      el("div", { class: "result" },
        el("strong", {}, t("photo_n", { n: index + 1 })),
        status ? el("p", { class: photo.state === "error" ? "error" : "muted", role: "status" }, status) : null,
        problems.length ? el("ul", { class: "checks" }, problems.map((c) => el("li", {},
          outcomeTag(c.outcome), " ", el("strong", {}, t(`check_${c.name}`)), el("p", {}, c.explanation)))) : null,
        el("button", { type: "button", class: problems.some((c) => c.outcome === "fail") ? "danger" : "", onclick: async () => {
          await patchPhoto(photo.localId, { state: "deleting" });
          await drawPhotos();
          sync();
        } }, problems.length ? t("retake") : t("delete"))));
  }

  function drawSubmit(mine, pending) {
    // The worker is deciding in the position panel: a re-render (a sync, a photo's checks) that
    // finishes after the panel appeared must not take it away.
    if (!pending && submitBox.querySelector(".position")) return;
    if (pending) {
      submitBox.replaceChildren(notice(pending.state === "failed" ? pending.error : t("submission_waiting"), pending.state === "failed" ? "error" : "info"),
        pending.state === "failed" ? el("button", { type: "button", onclick: async () => { await dropSubmission(assignmentId); drawPhotos(); } }, t("discard")) : null);
      return;
    }
    const ready = mine.length >= rules.min_photos;
    const cancel = el("button", { type: "button", class: "link", onclick: async () => {
      if (!confirm(t("cancel_confirm"))) return;
      const answer = await api("DELETE", `/assignments/${assignmentId}`).catch(() => null);
      if (answer && answer.ok) {
        for (const photo of await photosOf(assignmentId)) await dropPhoto(photo.localId);
        location.hash = "#/tasks";
      } else error.textContent = answer ? problemText(answer) : t("offline_action");
    } }, t("cancel_reservation"));
    const submit = el("button", { type: "button", class: "primary wide", disabled: !ready, onclick: () => checkPosition(submit) },
      ready ? t("submit") : t("need_photos", { count: rules.min_photos }));
    submitBox.replaceChildren(submit, cancel);
  }

  // Before sending: where the phone is, how precise that is, and a warning when it does not look
  // like the store; sent only when the worker says so.
  async function checkPosition(button) {
    error.textContent = "";
    button.disabled = true;
    let here;
    try { here = await locate(); } catch (problem) { error.textContent = problem.message; button.disabled = false; return; }
    const away = metres(here, a.store);
    const fence = (a.store.geofence_m || 150) + Math.min(here.accuracy, ACCURACY_ALLOWANCE_CAP_M);
    const warnings = [];
    if (here.accuracy > POOR_ACCURACY_M) warnings.push(t("warn_accuracy", { accuracy: Math.round(here.accuracy) }));
    if (away > fence) warnings.push(t("warn_outside", { distance: distanceText(away) }));
    const send = el("button", { type: "button", class: "primary wide", onclick: () => { send.disabled = true; submitVisit(here); } }, t("submit_now"));
    submitBox.replaceChildren(el("section", { class: `position ${warnings.length ? "doubtful" : "fine"}`, "aria-labelledby": "position-title" },
      el("h2", { id: "position-title" }, t("position_title")),
      el("p", {}, t("position_summary", { distance: distanceText(away), accuracy: Math.round(here.accuracy) })),
      warnings.map((w) => notice(w, "error")),
      send,
      el("button", { type: "button", class: "wide", onclick: () => { submitBox.replaceChildren(); drawPhotos(); } }, t("not_now"))));
    send.focus();
  }

  async function submitVisit(here) {
    if (await submissionOf(a.id)) return; // already saved: it goes out once, with its own key
    const now = new Date();
    const offset = -now.getTimezoneOffset();
    const sign = offset >= 0 ? "+" : "-";
    const pad = (n) => String(Math.floor(Math.abs(n))).padStart(2, "0");
    const local = new Date(now.getTime() + offset * 60000).toISOString().slice(0, 19);
    const arrived = Number(localStorage.getItem(`fc.arrived.${a.id}`));
    await putSubmission({
      assignmentId: a.id, owner: state.email, key: newId(), state: "waiting", createdAt: Date.now(),
      draft: {
        location: { lat: here.lat, lon: here.lon, accuracy_m: here.accuracy, is_mock: false },
        captured_at: `${local}${sign}${pad(offset / 60)}:${pad(offset % 60)}`,
        device_id: state.device,
        arrived_at: arrived ? new Date(arrived).toISOString() : undefined,
      },
    });
    localStorage.removeItem(`fc.arrived.${a.id}`); // kept in the submission now
    await sync();
    if (!(await submissionOf(a.id))) location.hash = `#/work/${a.id}`;
    else drawPhotos();
  }

  state.onChange = async () => {
    if (submitBox.querySelector(".position")) return; // the worker is deciding: leave the panel
    await drawPhotos();
    if (!(await submissionOf(assignmentId)) && a.status === "reserved" && !(await photosOf(assignmentId)).length) {
      const fresh = await api("GET", `/assignments/${assignmentId}`).catch(() => null);
      if (fresh && fresh.ok && fresh.data.status !== "reserved") location.hash = `#/work/${assignmentId}`;
    }
  };
  await drawPhotos();
  sync();
}

async function work() {
  const answer = await api("GET", "/me/assignments?limit=50").catch(() => null);
  if (!answer || !answer.ok) { show(el("h1", {}, t("work_title")), notice(answer ? problemText(answer) : t("offline_action"), "error")); return; }
  const waiting = await allSubmissions();
  show(
    el("h1", {}, t("work_title")),
    waiting.length ? notice(t("waiting", { photos: 0, submissions: waiting.length })) : null,
    answer.data.items.length ? el("ul", { class: "cards" }, answer.data.items.map((a) => el("li", {},
      el("a", { class: "card", href: a.status === "reserved" ? `#/assignment/${a.id}` : `#/work/${a.id}` },
        el("span", { class: "bar" }, el("strong", {}, a.title), statusTag(a.status)),
        el("span", {}, a.store.name),
        el("span", { class: "muted" }, when(a.submitted_at || a.created_at)),
        a.payment.amount_cents ? el("span", {}, t(`payment_${a.payment.status}`), " ", money(a.payment.amount_cents, a.payment.currency)) : null))))
      : el("p", { class: "empty" }, t("no_work")),
  );
}

async function workItem(assignmentId) {
  const answer = await api("GET", `/assignments/${assignmentId}`).catch(() => null);
  if (!answer || !answer.ok) { show(notice(answer ? problemText(answer) : t("offline_action"), "error")); return; }
  const a = answer.data;
  const byPhoto = new Map();
  for (const check of a.checks) {
    const key = check.photo_id || "visit";
    if (!byPhoto.has(key)) byPhoto.set(key, []);
    byPhoto.get(key).push(check);
  }
  const photoIndex = new Map(a.photos.map((p, i) => [p.id, i]));
  const groups = [...byPhoto.entries()].map(([key, checks]) => el("section", { class: "checkgroup" },
    el("h3", {}, key === "visit" ? t("visit_checks") : t("photo_n", { n: (photoIndex.get(key) ?? 0) + 1 })),
    key !== "visit" && a.photos[photoIndex.get(key)] && a.photos[photoIndex.get(key)].thumbnail_url
      ? el("img", { class: "thumb", src: a.photos[photoIndex.get(key)].thumbnail_url, alt: t("photo_n", { n: (photoIndex.get(key) ?? 0) + 1 }) }) : null,
    el("ul", { class: "checks" }, checks.map((c) => el("li", {},
      outcomeTag(c.outcome), " ", el("strong", {}, t(`check_${c.name}`)),
      el("p", {}, c.explanation),
      c.value || c.threshold ? el("p", { class: "muted small" }, [c.value ? t("measured", { value: c.value }) : null, c.threshold ? t("threshold", { value: c.threshold }) : null].filter(Boolean).join(" · ")) : null)))));
  const appeal = a.appeal_until ? appealForm(a) : null;
  const statement = ["rejected", "appealed"].includes(a.status) ? el("button", { type: "button", onclick: async () => {
    // The written statement of reasons, a printable page in the worker's language.
    const answer = await fetch(`${API}/assignments/${a.id}/statement`, {
      headers: { Authorization: `Bearer ${state.token}`, Accept: "text/html", "Accept-Language": state.lang },
    }).catch(() => null);
    if (!answer || !answer.ok) return;
    window.open(URL.createObjectURL(await answer.blob()), "_blank");
  } }, t("statement")) : null;
  show(
    el("a", { class: "back", href: "#/work" }, t("back_work")),
    el("h1", {}, a.title),
    el("p", {}, statusTag(a.status), " ", a.store.name),
    a.decision ? el("section", { class: `decision ${a.decision.outcome}` },
      el("h2", {}, t(`decided_${a.decision.outcome}`, {}), " ", el("span", { class: "muted" }, t(`by_${a.decision.decided_by}`))),
      el("ul", {}, a.decision.reasons.map((r) => el("li", {}, r)))) : el("p", { class: "muted" }, t("being_checked")),
    el("p", {}, t(`payment_${a.payment.status}`), " ", money(a.payment.amount_cents, a.payment.currency)),
    statement,
    appeal,
    groups.length ? el("h2", {}, t("checks_title")) : null,
    groups,
    el("h2", {}, t("history_title")),
    el("ol", { class: "history" }, a.history.map((h) => el("li", {}, el("span", { class: "muted" }, when(h.at)), " ", statusTag(h.to_status), " ", h.reason))),
  );
  if (["submitted"].includes(a.status)) state.timers.push(setInterval(async () => {
    const fresh = await api("GET", `/assignments/${assignmentId}`).catch(() => null);
    if (fresh && fresh.ok && fresh.data.status !== a.status) workItem(assignmentId);
  }, 2000));
}

function appealForm(a) {
  const message = el("textarea", { rows: 4, required: true, minlength: 10, maxlength: 2000 });
  const error = el("p", { class: "error", role: "alert" });
  return el("form", { class: "stack appeal", onsubmit: async (event) => {
    event.preventDefault();
    const answer = await api("POST", `/assignments/${a.id}/appeal`, { body: { message: message.value } }).catch(() => null);
    if (!answer) { error.textContent = t("offline_action"); return; }
    if (!answer.ok) { error.textContent = problemText(answer); return; }
    workItem(a.id);
  } },
  el("h2", {}, t("appeal_title")),
  el("p", { class: "muted" }, t("appeal_until", { time: when(a.appeal_until) })),
  field(t("appeal_message"), message), error,
  el("button", { type: "submit", class: "primary" }, t("appeal_button")));
}

function ibanValid(value) {
  const iban = value.replace(/\s+/g, "").toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{10,30}$/.test(iban)) return false;
  const moved = iban.slice(4) + iban.slice(0, 4);
  let rest = 0;
  for (const ch of moved) {
    const code = /\d/.test(ch) ? ch : String(ch.charCodeAt(0) - 55);
    for (const digit of code) rest = (rest * 10 + Number(digit)) % 97;
  }
  return rest === 1;
}

async function earnings() {
  const [balance, details, payouts] = await Promise.all([
    api("GET", "/me/balance").catch(() => null),
    api("GET", "/me/payout-details").catch(() => null),
    api("GET", "/me/payouts?limit=20").catch(() => null),
  ]);
  if (!balance || !balance.ok) { show(el("h1", {}, t("earnings_title")), notice(balance ? problemText(balance) : t("offline_action"), "error")); return; }
  const rows = balance.data.balances || [];
  const saved = details && details.ok && details.data ? details.data : null;
  const holder = el("input", { type: "text", autocomplete: "name", required: true, value: saved ? saved.account_holder : "" });
  const iban = el("input", { type: "text", autocomplete: "off", required: true, spellcheck: "false", placeholder: "FR76 …" });
  const detailsError = el("p", { class: "error", role: "alert" });
  const amount = el("input", { type: "number", min: "0.01", step: "0.01", required: true, inputmode: "decimal" });
  const payoutError = el("p", { class: "error", role: "alert" });
  const currency = rows[0] ? rows[0].currency : "EUR";
  show(
    el("h1", {}, t("earnings_title")),
    rows.length ? el("dl", { class: "balance" }, rows.map((b) => [
      el("dt", {}, t("available")), el("dd", { class: "big" }, money(b.available_cents, b.currency)),
      el("dt", {}, t("earned")), el("dd", {}, money(b.earned_cents, b.currency)),
      el("dt", {}, t("paid_out")), el("dd", {}, money(b.paid_out_cents + (b.in_transit_cents || 0), b.currency)),
    ])) : el("p", { class: "empty" }, t("no_earnings")),
    el("h2", {}, t("payout_details")),
    el("form", { class: "stack", onsubmit: async (event) => {
      event.preventDefault();
      detailsError.textContent = "";
      if (!ibanValid(iban.value)) { detailsError.textContent = t("iban_invalid"); iban.setAttribute("aria-invalid", "true"); return; }
      iban.removeAttribute("aria-invalid");
      const answer = await api("PUT", "/me/payout-details", { body: { account_holder: holder.value, iban: iban.value.replace(/\s+/g, "") } }).catch(() => null);
      detailsError.textContent = !answer ? t("offline_action") : answer.ok ? "" : problemText(answer);
      if (answer && answer.ok) detailsError.replaceWith(notice(t("saved")));
    } }, field(t("account_holder"), holder), field(t("iban"), iban, saved ? t("iban_saved", { last4: saved.iban_last4 }) : null),
    detailsError, el("button", { type: "submit" }, t("save"))),
    el("h2", {}, t("payout_title")),
    el("form", { class: "stack", onsubmit: async (event) => {
      event.preventDefault();
      payoutError.textContent = "";
      // One key per payout asked for: the same request sent again after a network failure reuses
      // it (never paid twice); another amount is another request.
      const cents = Math.round(Number(amount.value) * 100);
      const kept = JSON.parse(sessionStorage.getItem("fc.payout") || "null");
      const key = kept && kept.cents === cents ? kept.key : newId();
      sessionStorage.setItem("fc.payout", JSON.stringify({ key, cents }));
      const answer = await api("POST", "/me/payouts", {
        body: { amount_cents: cents, currency },
        headers: { "Idempotency-Key": key },
      }).catch(() => null);
      if (!answer) { payoutError.textContent = t("offline_action"); return; }
      sessionStorage.removeItem("fc.payout");
      if (!answer.ok) { payoutError.textContent = problemText(answer); return; }
      earnings();
    } }, field(t("amount", { currency }), amount), payoutError, el("button", { type: "submit", class: "primary" }, t("payout_button"))),
    payouts && payouts.ok && payouts.data.items.length ? el("ul", { class: "cards" }, payouts.data.items.map((p) => el("li", { class: "card" },
      el("span", { class: "bar" }, el("strong", {}, money(p.amount_cents, p.currency)), el("span", { class: `tag ${p.status}` }, t(`payout_${p.status}`))),
      el("span", { class: "muted" }, when(p.created_at)), p.failure ? el("span", { class: "error" }, p.failure) : null))) : null,
  );
}

function settings() {
  const choice = el("select", { onchange: async () => {
    state.lang = choice.value;
    localStorage.setItem("fc.lang", state.lang);
    await loadTexts(state.lang);
    settings();
  } }, el("option", { value: "en", selected: state.lang === "en" }, "English"), el("option", { value: "fr", selected: state.lang === "fr" }, "Français"));
  show(
    el("h1", {}, t("settings_title")),
    field(t("language"), choice),
    state.token ? el("p", {}, t("signed_in_as", { email: state.email || "" })) : null,
    state.token ? el("button", { type: "button", onclick: async () => {
      const waiting = (await allPhotos()).filter((p) => p.owner === state.email && p.state !== "checked").length
        + (await allSubmissions()).filter((w) => w.owner === state.email).length;
      if (waiting && !confirm(t("sign_out_waiting", { count: waiting }))) return;
      await api("POST", "/auth/logout").catch(() => null);
      signOutLocally();
      location.hash = "#/signin";
    } }, t("sign_out")) : null,
    state.token ? myData() : null,
    state.token ? closeAccount() : null,
    !window.isSecureContext ? notice(t("insecure"), "error") : null,
  );
}

// A copy of everything about the worker: asked for once (the server builds one at a time), then
// followed while this screen is open; the link is fetched fresh each time, so it never goes stale.
function myData() {
  const status = el("div", { class: "my-data", role: "status", "aria-live": "polite" });
  const button = el("button", { type: "button", onclick: async () => {
    button.disabled = true;
    const answer = await api("POST", "/me/export").catch(() => null);
    button.disabled = false;
    if (!answer) { status.replaceChildren(notice(t("offline_action"), "error")); return; }
    if (!answer.ok) { status.replaceChildren(notice(problemText(answer), "error")); return; }
    follow(answer.data);
  } }, t("my_data_button"));
  function draw(item) {
    if (item.status === "done" && item.download_url) {
      const size = number(item.size_bytes / 1e6, 1);
      status.replaceChildren(
        el("a", { class: "button primary", href: item.download_url, download: item.filename || "" }, t("my_data_ready", { size })),
        el("p", { class: "muted" }, t("my_data_kept", { date: when(item.finished_at), expires: when(item.expires_at) })),
      );
    } else if (item.status === "failed") {
      status.replaceChildren(notice(t("my_data_failed", { reason: item.error || "" }), "error"));
    } else if (item.status === "queued" || item.status === "running") {
      status.replaceChildren(
        el("progress", { max: "100", value: String(Math.round(item.progress * 100)) }),
        el("p", {}, t("my_data_preparing", { percent: number(item.progress * 100, 0) })),
      );
    }
  }
  async function follow(item) {
    draw(item);
    while ((item.status === "queued" || item.status === "running") && location.hash === "#/settings" && status.isConnected) {
      await new Promise((done) => setTimeout(done, 1500));
      const answer = await api("GET", `/me/exports/${item.id}`).catch(() => null);
      if (!answer || !answer.ok) return;
      item = answer.data;
      draw(item);
    }
  }
  api("GET", "/me/exports?limit=1").then((answer) => {
    if (answer && answer.ok && answer.data.items.length) follow(answer.data.items[0]);
  }).catch(() => null);
  return el("section", { "aria-labelledby": "my-data" },
    el("h2", { id: "my-data" }, t("my_data_title")),
    el("p", {}, t("my_data_text")),
    button,
    status,
  );
}

function closeAccount() {
  const password = el("input", { type: "password", autocomplete: "current-password", required: true });
  const error = el("p", { class: "error", role: "alert" });
  return el("section", { "aria-labelledby": "close-account" },
    el("h2", { id: "close-account" }, t("close_title")),
    el("p", {}, t("close_text")),
    el("form", { onsubmit: async (event) => {
      event.preventDefault();
      error.textContent = "";
      // Work still on the phone would be lost with the account (its reservation given back): it goes
      // out first, or the worker deletes it.
      const mine = (await allPhotos()).filter((p) => p.owner === state.email);
      const visits = (await allSubmissions()).filter((w) => w.owner === state.email);
      if (mine.some((p) => p.state !== "checked") || visits.length) { error.textContent = t("close_waiting"); return; }
      if (!confirm(t("close_confirm"))) return;
      const answer = await api("DELETE", "/me", { body: { password: password.value } }).catch(() => null);
      if (!answer) { error.textContent = t("offline_action"); return; }
      if (!answer.ok) { error.textContent = problemText(answer); return; }
      // Nothing of the closed account stays on the phone: its photos, their previews, its keys.
      for (const photo of mine) { forgetPreview(photo.localId); await dropPhoto(photo.localId); }
      for (const key of Object.keys(localStorage)) {
        if (key.startsWith("fc.arrived.") || key.startsWith("fc.a.")) localStorage.removeItem(key);
      }
      localStorage.removeItem("fc.email");
      state.email = null;
      signOutLocally();
      location.hash = "#/signin";
      alert(t("close_done"));
    } }, field(t("password"), password), error, el("button", { type: "submit", class: "danger" }, t("close_button"))),
  );
}

// Start ----------------------------------------------------------------------------------------
async function start() {
  if (location.pathname === "/app") { location.replace(`/app/${location.hash}`); return; }
  await loadTexts(state.lang);
  document.getElementById("brand").textContent = t("app_name");
  document.querySelector(".skip").textContent = t("skip");
  document.getElementById("nav").setAttribute("aria-label", t("main_nav"));
  if (!window.isSecureContext) document.getElementById("insecure").textContent = t("insecure");
  if ("serviceWorker" in navigator && window.isSecureContext) navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" });
  // Photos waiting for the network must not be evicted when the phone runs short of space.
  if (navigator.storage && navigator.storage.persist) navigator.storage.persist().catch(() => null);
  window.addEventListener("hashchange", route);
  window.addEventListener("online", () => sync());
  window.addEventListener("offline", renderWaiting);
  setInterval(sync, SYNC_MS);
  await route();
  renderWaiting();
  sync();
}

start();
