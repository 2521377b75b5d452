// Service worker: keeps the app shell for offline starts. It never caches the API (/v1), photos
// or heatmaps (/local-objects, presigned URLs): those are private and short-lived.
// Bump VERSION when a shell file changes; the old cache is dropped on activation.

const VERSION = 'v6';
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

// Shell files: network first (so a deploy shows at once), the cached copy when offline.
async function shell(request, cacheKey) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) cache.put(cacheKey, response.clone());
    return response;
  } catch (err) {
    const cached = await cache.match(cacheKey);
    if (cached) return cached;
    throw err;
  }
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return; // presigned S3 URLs: straight to the network
  if (request.mode === 'navigate' && url.pathname === '/') {
    event.respondWith(shell(request, '/'));
    return;
  }
  if (SHELL_PATHS.has(url.pathname) && !url.search) {
    event.respondWith(shell(request, url.pathname));
  }
  // Everything else (/v1, /local-objects, /health, /docs) is not touched: no caching at all.
});
