// The app's service worker: its shell (page, script, style, texts, icons) opens without a network.
// The API is never cached: what the worker sends waits in IndexedDB, not here.
const VERSION = "__VERSION__";
const CACHE = `fieldcheck-app-${VERSION}`;
const SHELL = [
  "/app/", "/app/app.js", "/app/app.css", "/app/manifest.webmanifest", "/app/icon.svg",
  "/app/icon-192.png", "/app/texts/en.json", "/app/texts/fr.json",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((n) => n.startsWith("fieldcheck-app-") && n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin || !SHELL.includes(url.pathname)) return;
  // The network first (a new version shows at once), the cached shell when there is none.
  event.respondWith(
    fetch(event.request)
      .then((answer) => {
        if (answer.ok) caches.open(CACHE).then((cache) => cache.put(event.request, answer.clone()));
        return answer;
      })
      .catch(() => caches.match(event.request, { ignoreSearch: true, ignoreVary: true })),
  );
});
