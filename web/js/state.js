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
};

export function setPendingFile(file) {
  if (state.pendingUrl) URL.revokeObjectURL(state.pendingUrl);
  state.pendingFile = file;
  state.pendingUrl = file ? URL.createObjectURL(file) : null;
}

/** Keep a fresh answer; the picked photo's preview URL moves with it (the upload is done). */
export function setLastResult(result) {
  if (state.lastResult?.photoUrl && state.lastResult.photoUrl !== state.pendingUrl) {
    URL.revokeObjectURL(state.lastResult.photoUrl);
  }
  state.lastResult = { result, photoUrl: state.pendingUrl, receivedAt: new Date().toISOString() };
  state.pendingFile = null;
  state.pendingUrl = null;
}

export function takeFlash() {
  const message = state.flash;
  state.flash = null;
  return message;
}

export function forgetEverything() {
  setPendingFile(null);
  if (state.lastResult?.photoUrl) URL.revokeObjectURL(state.lastResult.photoUrl);
  state.lastResult = null;
}
