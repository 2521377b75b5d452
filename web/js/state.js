// What the app holds in memory between screens (never persisted: photos and results of guests
// stay on the device only as long as the tab is open).

export const state = {
  /** The photo picked on the home screen; kept after a failed upload so it can be retried. */
  pendingFile: null,
  /** Object URL of pendingFile for previews (revoked when the file changes). */
  pendingUrl: null,
  /** The last prediction answer, with the local photo URL: the guest's result lives only here. */
  lastResult: null,
  /** One-shot message for the next screen (e.g. "Signed out"). */
  flash: null,
  /** The photo check in flight ({ file, url, … }, see checks.js): it outlives the Scan screen. */
  checking: null,
  /** A check that ended while the person was on another screen ({ result, href } or { error }). */
  unseenCheck: null,
  /** Bumped when the session is forgotten: a check started before belongs to nobody here. */
  epoch: 0,
};

export function setPendingFile(file) {
  // The photo being checked keeps its URL: its result screen shows it.
  if (state.pendingUrl && state.pendingUrl !== state.checking?.url) URL.revokeObjectURL(state.pendingUrl);
  state.pendingFile = file;
  state.pendingUrl = file ? URL.createObjectURL(file) : null;
}

/**
 * Keep a fresh answer for `photo` (the picked file and its preview URL, by default the pending
 * one). The URL moves with the answer; the photo stops being pending unless another one was
 * picked meanwhile.
 */
export function setLastResult(result, photo = { file: state.pendingFile, url: state.pendingUrl }) {
  const old = state.lastResult?.photoUrl;
  if (old && old !== photo.url && old !== state.pendingUrl) URL.revokeObjectURL(old);
  state.lastResult = { result, photoUrl: photo.url, receivedAt: new Date().toISOString() };
  if (state.pendingFile === photo.file) {
    state.pendingFile = null;
    state.pendingUrl = null;
  }
}

export function takeFlash() {
  const message = state.flash;
  state.flash = null;
  return message;
}

export function forgetEverything() {
  state.epoch += 1;
  state.unseenCheck = null;
  // A check in flight belonged to the session just forgotten: stop it, so that nothing of it
  // reaches the next person and the Scan screen is free for them at once.
  const job = state.checking;
  state.checking = null;
  if (job) {
    job.cancelled = true;
    job.controller?.abort();
  }
  setPendingFile(null);
  if (state.lastResult?.photoUrl) URL.revokeObjectURL(state.lastResult.photoUrl);
  state.lastResult = null;
}
