// Huddle's service worker: keeps the app shell on the phone so that Huddle opens with no connection.
//
// It caches only the app's own files (never messages: those live encrypted in
// IndexedDB) and never touches the relay's API or the WebSocket.

// The build replaces this line with the build's id and the list of files it
// produced (xtask `dist`); the version changes whenever any file does, which
// is what makes browsers install the new worker.
const PRECACHE_MANIFEST = { build: "unbuilt", files: ["/index.html"] };

const CACHE_PREFIX = "huddle-shell-";
const CACHE_NAME = CACHE_PREFIX + PRECACHE_MANIFEST.build;
const APP_PAGE = "/index.html";

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE_NAME);
      // `reload` skips the HTTP cache, so that the shell is the one just deployed.
      await cache.addAll(PRECACHE_MANIFEST.files.map((url) => new Request(url, { cache: "reload" })));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(CACHE_PREFIX) && name !== CACHE_NAME) {
          await caches.delete(name);
        }
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/api/") || url.pathname === "/healthz") return;

  if (request.mode === "navigate") {
    // Every route of the app is the same page: answer from the cache at once
    // (a fast start on a slow network), and from the network if the shell is
    // not cached yet.
    event.respondWith(
      (async () => {
        const cached = await caches.match(APP_PAGE, { cacheName: CACHE_NAME });
        return cached || fetch(request);
      })(),
    );
    return;
  }

  event.respondWith(
    (async () => {
      const cached = await caches.match(request, { cacheName: CACHE_NAME });
      return cached || fetch(request);
    })(),
  );
});
