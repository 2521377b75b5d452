// Entry point: restore the session, register the service worker, route `#/screen/param`.

import * as api from './api.js';
import * as auth from './auth.js';
import * as checks from './checks.js';
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
// Each render takes a number: a screen still loading when a newer one starts is dropped.
let renders = 0;
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
  // What a screen has to say once it is drawn (a result's verdict) goes out in one message
  // after the title: written separately, the title's announcement would overwrite it.
  const said = [];
  let rendering = true;
  const say = (message) => { if (rendering) said.push(message); else announce(message); };
  const mine = ++renders;
  let done;
  try {
    done = await screen.render(view, params, { go, say });
  } catch (err) {
    if (mine !== renders) return; // the person has moved on: this screen is gone anyway
    if (err?.code === 'session_ended') {
      state.flash = err.message;
      location.replace('#/signin');
      return;
    }
    throw err;
  } finally {
    rendering = false;
  }
  if (mine !== renders) {
    // Another screen was drawn while this one was still loading (History, then Scan at once):
    // this screen is gone, so its cleanup runs now, and it must not replace the new screen's.
    if (typeof done === 'function') done();
    return;
  }
  cleanup = done;
  checks.updateBanner();
  // Move focus to the new screen's heading so keyboard and screen-reader users follow along.
  if (!firstRender) focusScreen();
  const message = [firstRender ? null : screen.title, ...said].filter(Boolean).join('. ');
  if (message) announce(message);
  firstRender = false;
  window.scrollTo(0, 0);
}

/** Focus the screen's heading (else the main area), for the router and the skip link. */
function focusScreen() {
  const target = view.querySelector('h1') || view;
  target.setAttribute('tabindex', '-1');
  target.focus({ preventScroll: false });
}

// "Skip to content" points at #view, which the router would read as a screen name (and send
// the person to the default screen): move focus into the screen instead, route unchanged.
function wireSkipLink() {
  const link = document.querySelector('.skip-link');
  link?.addEventListener('click', (event) => {
    event.preventDefault();
    focusScreen();
  });
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
  wireSkipLink();
  watchConnectivity();
  registerServiceWorker();
  auth.onChange((mode) => {
    if (mode === 'anonymous') forgetEverything();
    updateNav(parseHash().name);
    checks.updateBanner();
  });
  await restoreSession();
  window.addEventListener('hashchange', render);
  await render();
  document.documentElement.dataset.ready = 'true';
}

main();
