// Who is using the app, and their tokens.
//
// - The access token (short-lived, ~15 min) lives in memory only: a reload or a new tab gets a
//   fresh one from the refresh token.
// - The refresh token is kept in sessionStorage by default (gone when the tab closes), or in
//   localStorage when the person ticks "Stay signed in on this device" (survives restarts, which
//   an installed app needs). Either storage is readable by script on this origin, so the app
//   relies on a strict Content-Security-Policy (no inline or third-party script) and on the
//   server's rotation: each refresh token works once, and a replayed one revokes the session.
// - Refreshes are serialised across tabs with the Web Locks API, so two tabs sharing a
//   localStorage token never both spend it (which the server would treat as theft).

const REFRESH_KEY = 'skinscan.refresh_token';
const GUEST_KEY = 'skinscan.guest';
const LOCK_NAME = 'skinscan-refresh';

let accessToken = null;
let user = null;
let inflightRefresh = null;
const listeners = new Set();

/** Raised when there is no valid session any more (the person must sign in again). */
export class SessionEndedError extends Error {
  constructor(message = 'Your session has ended. Please sign in again.') {
    super(message);
    this.name = 'SessionEndedError';
    this.code = 'session_ended';
    this.status = 401;
  }
}

function storedRefresh() {
  return localStorage.getItem(REFRESH_KEY) ?? sessionStorage.getItem(REFRESH_KEY);
}

function remembered() {
  return localStorage.getItem(REFRESH_KEY) !== null;
}

function saveRefresh(token, remember) {
  localStorage.removeItem(REFRESH_KEY);
  sessionStorage.removeItem(REFRESH_KEY);
  (remember ? localStorage : sessionStorage).setItem(REFRESH_KEY, token);
}

function notify() {
  for (const fn of listeners) fn(mode());
}

/** 'user' (signed in or able to refresh), 'guest', or 'anonymous'. */
export function mode() {
  if (accessToken || storedRefresh()) return 'user';
  if (sessionStorage.getItem(GUEST_KEY) === '1') return 'guest';
  return 'anonymous';
}

export function onChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function getAccessToken() {
  return accessToken;
}

export function getUser() {
  return user;
}

export function setUser(value) {
  user = value;
}

export function hasRefreshToken() {
  return storedRefresh() !== null;
}

/** Keep a fresh token pair (from register, login or refresh). */
export function acceptTokens(pair, { remember } = {}) {
  accessToken = pair.access_token;
  saveRefresh(pair.refresh_token, remember ?? remembered());
  sessionStorage.removeItem(GUEST_KEY);
  notify();
}

export function continueAsGuest() {
  clear();
  sessionStorage.setItem(GUEST_KEY, '1');
  notify();
}

/** Forget everything about the session on this device (the server side is revoked separately). */
export function clear() {
  accessToken = null;
  user = null;
  localStorage.removeItem(REFRESH_KEY);
  sessionStorage.removeItem(REFRESH_KEY);
  sessionStorage.removeItem(GUEST_KEY);
  notify();
}

/** The refresh token to revoke on sign-out (read before clearing). */
export function refreshTokenForLogout() {
  return storedRefresh();
}

async function postRefresh() {
  const token = storedRefresh();
  if (!token) throw new SessionEndedError();
  let response;
  try {
    response = await fetch('/v1/auth/refresh', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ refresh_token: token }),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (err) {
    const offline = new Error('offline');
    offline.code = 'offline';
    offline.status = 0;
    throw offline;
  }
  if (response.status === 401 || response.status === 403) {
    // A password change (in this tab or another) stored a new pair while this token was on its
    // way, and revoked it: the session goes on with the new token, it must not be forgotten.
    const now = storedRefresh();
    if (now !== null && now !== token) return postRefresh();
    // Expired, revoked or replayed: the session is over.
    clear();
    throw new SessionEndedError();
  }
  if (!response.ok) {
    const err = new Error(`refresh failed (${response.status})`);
    err.status = response.status;
    err.code = response.status === 429 || response.status === 503 ? 'busy' : 'server_error';
    err.retryAfter = Number(response.headers.get('Retry-After')) || null;
    throw err;
  }
  acceptTokens(await response.json());
  return accessToken;
}

/**
 * Get a new access token with the stored refresh token (rotating it). Concurrent callers in this
 * tab share one request; other tabs wait on a Web Lock and then use the token this one stored.
 */
export function refreshAccessToken() {
  if (!inflightRefresh) {
    const run = () => postRefresh();
    const locked = navigator.locks?.request
      ? navigator.locks.request(LOCK_NAME, run)
      : run();
    inflightRefresh = locked.finally(() => { inflightRefresh = null; });
  }
  return inflightRefresh;
}
