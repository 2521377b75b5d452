// Service worker: keeps the app shell for offline starts. It never caches the API (/v1), photos
// or heatmaps (/local-objects, presigned URLs): those are private and short-lived.
// Bump VERSION when a shell file changes; the old cache is dropped on activation.

const VERSION = 'v13';
const CACHE = `skinscan-shell-${VERSION}`;
const SHELL = [
  '/',
  '/index.html',
  '/styles.css',
  '/manifest.webmanifest',
  '/icons/icon-192.png',
  '/icons/icon-512.png',
  '/icons/apple-touch-icon.png',
  '/js/app.js',
  '/js/api.js',
  '/js/auth.js',
  '/js/checks.js',
  '/js/components.js',
  '/js/dom.js',
  '/js/errors.js',
  '/js/heatmap.js',
  '/js/photo.js',
  '/js/state.js',
  '/js/screens/account.js',
  '/js/screens/history.js',
  '/js/screens/home.js',
  '/js/screens/result.js',
  '/js/screens/signin.js',
  '/js/screens/signup.js',
];
const SHELL_PATHS = new Set(SHELL);

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches.open(CACHE)
      .then((cache) => cache.addAll(SHELL.map((path) => new Request(path, { cache: 'reload' }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    const names = await caches.keys();
    await Promise.all(names.filter((n) => n.startsWith('skinscan-shell-') && n !== CACHE).map((n) => caches.delete(n)));
    await self.clients.claim();
  })());
});

// Shell files: the network first (so a deploy shows at once), the cached copy when offline or
// when the network has not answered within NETWORK_WAIT_MS: a connection that is up but never
// answers (weak signal, captive portal) must not leave the installed app a blank page. A late
// answer still refreshes the cache in the background.
const NETWORK_WAIT_MS = 3000;
// Once one shell file had to come from the cache, its siblings do not wait again (a page needs
// a dozen of them, a few import levels deep): the cache answers at once for a short while.
const STALLED_FOR_MS = 30_000;
let stalledAt = -Infinity;

function shell(event, cacheKey) {
  const network = fetch(event.request);
  const refreshed = network.then(async (response) => {
    if (!response.ok) return;
    const copy = response.clone(); // before the page starts reading the body
    const cache = await caches.open(CACHE);
    await cache.put(cacheKey, copy);
  });
  // Keep the worker alive until a slow answer has been stored.
  event.waitUntil(refreshed.catch(() => {}));
  event.respondWith((async () => {
    const cached = await caches.match(cacheKey, { cacheName: CACHE });
    if (!cached) return network; // nothing to fall back on: wait for the network, however long
    const stalled = Date.now() - stalledAt < STALLED_FOR_MS;
    const wait = stalled ? 0 : NETWORK_WAIT_MS;
    let timer;
    const late = new Promise((resolve) => {
      timer = setTimeout(() => { stalledAt = Date.now(); resolve(cached); }, wait);
    });
    const answered = network.then((response) => {
      stalledAt = -Infinity;
      return response;
    }, () => cached); // offline: the cached copy at once
    try {
      return await Promise.race([answered, late]);
    } finally {
      clearTimeout(timer);
    }
  })());
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return; // presigned S3 URLs: straight to the network
  if (request.mode === 'navigate' && url.pathname === '/') {
    shell(event, '/');
    return;
  }
  if (SHELL_PATHS.has(url.pathname) && !url.search) {
    shell(event, url.pathname);
  }
  // Everything else (/v1, /local-objects, /health, /docs) is not touched: no caching at all.
});
