// The photo check in flight lives here, outside any screen. The server stores a signed-in
// person's result even when they leave the Scan screen while it works; cancelling the request
// then lost the answer (History said "No results yet", and checking again stored a duplicate).
// So the check runs to its end wherever the person goes, and a banner says when it is ready.

import * as api from './api.js';
import * as auth from './auth.js';
import { announce, h, replace } from './dom.js';
import { describeError } from './errors.js';
import { photoToSend } from './photo.js';
import { setLastResult, state } from './state.js';

// A check given no answer in this time is given up (API Gateway itself answers by 30 s; the
// local stack's first check may load the model): a silent network must not lock the app.
export const CHECK_TIMEOUT_MS = 60_000;

/** Fired on `window` with `{ id }` when a check's result was stored in the history. */
export const STORED_EVENT = 'skinscan:result-stored';

/** The check in flight, or null. */
export function current() {
  return state.checking;
}

/**
 * Check the picked photo. While a check is in flight that one is returned instead: one photo
 * is never sent twice, however often "Check this photo" is pressed or the screen is rebuilt.
 */
export function start() {
  if (state.checking) return state.checking;
  const job = {
    file: state.pendingFile,
    url: state.pendingUrl,
    epoch: state.epoch,
    watcher: null,
    controller: new AbortController(),
    cancelled: false,
    timedOut: false,
  };
  state.checking = job;
  state.unseenCheck = null;
  showBanner();
  run(job);
  return job;
}

/**
 * `fn({ result, href } | { error })` when `job` ends, instead of the banner: the Scan screen
 * watches while it is shown. Returns the function that stops watching (its cleanup).
 */
export function watch(job, fn) {
  job.watcher = fn;
  return () => { if (job.watcher === fn) job.watcher = null; };
}

/** A failure the person has not seen yet (it ended while they were elsewhere), handed over once. */
export function takeError() {
  const error = state.unseenCheck?.error;
  if (error) state.unseenCheck = null;
  return error || null;
}

function resultHref(result) {
  return result.id && auth.mode() === 'user' ? `#/result/${encodeURIComponent(result.id)}` : '#/result';
}

/** Stop waiting for `job` (the person pressed Cancel): its watcher hears `{ cancelled }`. */
export function cancel(job = state.checking) {
  if (!job) return;
  job.cancelled = true;
  job.controller.abort();
}

const TIMED_OUT = {
  code: 'timeout',
  status: 0,
  message: 'SkinScan did not answer in time.',
};

async function run(job) {
  let outcome;
  const timer = setTimeout(() => {
    job.timedOut = true;
    job.controller.abort();
  }, CHECK_TIMEOUT_MS);
  try {
    const result = await api.predict(await photoToSend(job.file), { signal: job.controller.signal });
    outcome = { result, href: resultHref(result) };
  } catch (error) {
    outcome = job.timedOut ? { error: TIMED_OUT } : { error };
  } finally {
    clearTimeout(timer);
  }
  if (state.checking === job) state.checking = null;
  if (job.cancelled) {
    // Cancelled here, or detached when the session was forgotten (state.forgetEverything).
    if (job.url && state.pendingUrl !== job.url) URL.revokeObjectURL(job.url);
    job.watcher?.({ cancelled: true });
    return;
  }
  if (job.epoch !== state.epoch) {
    // Signed out (or another person started) meanwhile: the answer belongs to nobody here.
    if (job.url) URL.revokeObjectURL(job.url);
    return;
  }
  if (outcome.result) {
    setLastResult(outcome.result, job);
    // Stored in the signed-in person's history: a History screen on show adds it at once.
    if (outcome.result.stored && outcome.result.id) {
      window.dispatchEvent(new CustomEvent(STORED_EVENT, { detail: { id: outcome.result.id } }));
    }
  } else if (job.url && state.pendingUrl !== job.url) URL.revokeObjectURL(job.url);
  if (job.watcher) {
    job.watcher(outcome);
    return;
  }
  state.unseenCheck = outcome;
  showBanner();
  announce(outcome.result ? 'Your result is ready.' : 'Your photo could not be checked.');
}

/** Show or hide the banner for the screen now shown: opening the finished result retires it. */
export function updateBanner() {
  if (state.unseenCheck?.result && location.hash === state.unseenCheck.href) state.unseenCheck = null;
  showBanner();
}

function showBanner() {
  const banner = document.getElementById('check-banner');
  if (!banner) return;
  const unseen = state.unseenCheck;
  if (!unseen) {
    banner.hidden = true;
    replace(banner);
    return;
  }
  if (unseen.result) {
    // A guest may already be on #/result (showing the previous result): the same address
    // fires no hashchange, so ask the router to draw the screen again.
    const reopen = (event) => {
      if (location.hash !== unseen.href) return;
      event.preventDefault();
      window.dispatchEvent(new HashChangeEvent('hashchange'));
    };
    replace(banner, 'Your result is ready. ', h('a', { href: unseen.href, onclick: reopen }, 'View it'));
  } else {
    // The Scan screen shows the full error card (with "Try again"); this only points there.
    replace(banner, `Your photo could not be checked (${describeError(unseen.error).title}). `,
      h('a', { href: '#/home' }, 'Back to Scan'));
  }
  banner.hidden = false;
}
