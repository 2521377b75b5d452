// Entry point: restore the session, register the service worker, route `#/screen/param`.

import * as api from './api.js';
import * as auth from './auth.js';
import { announce } from './dom.js';
import { forgetEverything, state } from './state.js';
import * as account from './screens/account.js';
import * as history from './screens/history.js';
import * as home from './screens/home.js';
import * as result from './screens/result.js';
import * as signin from './screens/signin.js';
import * as signup from './screens/signup.js';

// Each screen: { title, access: 'any' | 'started' (user or guest) | 'user', render(view, params) }.
const SCREENS = { signin, signup, home, result, history, account };

const view = document.getElementById('view');
let cleanup = null;
let firstRender = true;

function parseHash() {
  const [name, ...params] = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  return { name: name || '', params: params.map(decodeURIComponent) };
}

function defaultScreen() {
  return auth.mode() === 'anonymous' ? 'signin' : 'home';
}

function allowed(screen) {
  const mode = auth.mode();
  if (screen.access === 'user') return mode === 'user';
  if (screen.access === 'started') return mode !== 'anonymous';
  return true;
}

export function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function updateNav(name) {
  const mode = auth.mode();
  for (const link of document.querySelectorAll('.app-nav a')) {
    const needs = link.dataset.requires;
    link.hidden = (needs === 'user' && mode !== 'user') || (needs === 'guest' && mode === 'user');
    if (link.dataset.nav === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

async function render() {
  const { name, params } = parseHash();
  let screen = SCREENS[name];
  if (!screen) {
    location.replace(`#/${defaultScreen()}`);
    return;
  }
  if (screen.access === 'signed-out' && auth.mode() === 'user') {
    location.replace('#/home');
    return;
  }
  if (!allowed(screen)) {
    if (screen.access === 'user') state.flash = state.flash || 'Please sign in to see that page.';
    location.replace('#/signin');
    return;
  }
  if (typeof cleanup === 'function') cleanup();
  cleanup = null;
  updateNav(name);
  document.title = `${screen.title} · SkinScan`;
  view.replaceChildren();
  view.dataset.screen = name;
  try {
    cleanup = await screen.render(view, params, { go });
  } catch (err) {
    if (err?.code === 'session_ended') {
      state.flash = err.message;
      location.replace('#/signin');
      return;
    }
    throw err;
  }
  // Move focus to the new screen's heading so keyboard and screen-reader users follow along.
  if (!firstRender) {
    const heading = view.querySelector('h1');
    if (heading) {
      heading.setAttribute('tabindex', '-1');
      heading.focus({ preventScroll: false });
    }
    announce(screen.title);
  }
  firstRender = false;
  window.scrollTo(0, 0);
}

function watchConnectivity() {
  const banner = document.getElementById('offline-banner');
  const update = () => { banner.hidden = navigator.onLine; };
  window.addEventListener('online', update);
  window.addEventListener('offline', update);
  update();
}

async function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return;
  try {
    await navigator.serviceWorker.register('/sw.js', { scope: '/' });
  } catch (err) {
    console.warn('service worker not registered', err);
  }
}

async function restoreSession() {
  if (!auth.hasRefreshToken()) return;
  try {
    await auth.refreshAccessToken();
    auth.setUser(await api.me());
  } catch (err) {
    // Offline or busy: keep the refresh token, screens will say what is wrong when they load.
    if (err?.code === 'session_ended') state.flash = err.message;
  }
}

async function main() {
  watchConnectivity();
  registerServiceWorker();
  auth.onChange((mode) => {
    if (mode === 'anonymous') forgetEverything();
    updateNav(parseHash().name);
  });
  await restoreSession();
  window.addEventListener('hashchange', render);
  await render();
  document.documentElement.dataset.ready = 'true';
}

main();
