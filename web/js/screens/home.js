// Home: take a photo with the camera or pick one, check it. A failed upload keeps the photo so
// "Try again" needs no new pick; a check in flight goes on if the person leaves (checks.js).

import * as auth from '../auth.js';
import * as checks from '../checks.js';
import { errorCard } from '../components.js';
import { announce, append, h, icon, replace } from '../dom.js';
import { setPendingFile, state } from '../state.js';

export const title = 'Check a skin spot';
export const access = 'started';

function fileSize(bytes) {
  return bytes < 1024 * 1024 ? `${Math.max(1, Math.round(bytes / 1024))} KB` : `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function render(view, _params, { go }) {
  const signedIn = auth.mode() === 'user';
  let unwatch = null;

  const camera = h('input', {
    type: 'file', id: 'photo-camera', accept: 'image/*', capture: 'environment', class: 'visually-hidden',
  });
  const picker = h('input', { type: 'file', id: 'photo-file', accept: 'image/*', class: 'visually-hidden' });
  const preview = h('div', { class: 'preview', 'aria-live': 'polite' });
  const feedback = h('div', { class: 'feedback' });
  const checkButton = h('button', { type: 'button', class: 'button primary block', id: 'check-photo', disabled: true },
    'Check this photo');

  function showPreview() {
    const file = state.pendingFile;
    // While a check is in flight nothing more is sent (the same photo must not go twice).
    checkButton.disabled = !file || Boolean(checks.current());
    if (!file) {
      replace(preview, h('p', { class: 'hint' }, 'No photo chosen yet.'));
      return;
    }
    const img = h('img', { src: state.pendingUrl, alt: 'The photo you chose', class: 'preview-img' });
    // Not a picture the browser can show: say so instead of a broken-image icon (the server
    // still gets to decide, and says why if it refuses).
    img.addEventListener('error', () => img.replaceWith(
      h('p', { class: 'hint preview-missing' }, 'No preview: this file may not be a photo.')));
    replace(preview, img, h('p', { class: 'hint' }, `${file.name || 'Photo'} · ${fileSize(file.size)}`));
  }

  function onPicked(event) {
    const file = event.target.files?.[0];
    event.target.value = ''; // picking the same file again must fire `change` again
    if (!file) return;
    setPendingFile(file);
    if (!checks.current()) replace(feedback); // the progress of a check in flight stays
    showPreview();
    announce('Photo chosen. Press "Check this photo" to get a result.');
    if (!checkButton.disabled) checkButton.focus();
  }
  camera.addEventListener('change', onPicked);
  picker.addEventListener('change', onPicked);

  function showError(err, { focus = true } = {}) {
    if (err.code === 'session_ended') {
      state.flash = err.message;
      go('#/signin');
      return;
    }
    replace(feedback, errorCard(err, {
      onRetry: check,
      extra: [h('button', { type: 'button', class: 'button', onclick: () => picker.click() }, 'Choose another photo')],
    }));
    showPreview();
    if (focus) {
      feedback.querySelector('h2')?.setAttribute('tabindex', '-1');
      feedback.querySelector('h2')?.focus();
    }
  }

  // The check itself belongs to checks.js: leaving this screen only stops watching it (the
  // banner then says when it is ready), and coming back shows it is still in progress.
  function follow(job) {
    checkButton.disabled = true;
    view.setAttribute('aria-busy', 'true');
    replace(feedback,
      h('p', { class: 'progress', role: 'status' },
        h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Checking your photo…'),
      h('button', { type: 'button', class: 'button', onclick: () => checks.cancel(job) }, 'Cancel'));
    unwatch = checks.watch(job, ({ result, href, error, cancelled }) => {
      unwatch = null;
      view.removeAttribute('aria-busy');
      if (result) go(href);
      else if (cancelled) showCancelled();
      else showError(error);
    });
  }

  function showCancelled() {
    // The photo may already have reached the server, which then keeps a signed-in result.
    replace(feedback, h('p', { class: 'hint', role: 'status' }, 'Check cancelled.',
      signedIn ? ' If the photo had already reached SkinScan, its result may still appear in your history.' : ''));
    showPreview();
    if (!checkButton.disabled) checkButton.focus();
  }

  function check() {
    if (!state.pendingFile || checks.current()) return;
    follow(checks.start());
  }
  checkButton.addEventListener('click', check);

  append(view,
    h('h1', { text: 'Check a skin spot' }),
    h('p', { class: 'lead' }, 'Take a close, sharp photo of one spot in good light, with the spot in the middle.'),
    h('section', { class: 'card', 'aria-label': 'Choose a photo' },
      h('div', { class: 'pick' },
        camera,
        h('label', { for: 'photo-camera', class: 'button primary pick-button' },
          icon('camera'), 'Take a photo'),
        picker,
        h('label', { for: 'photo-file', class: 'button pick-button' },
          icon('image'), 'Choose a file')),
      preview,
      checkButton,
      feedback),
    signedIn
      ? h('p', { class: 'center' }, h('a', { href: '#/history' }, 'See your previous results'))
      : h('p', { class: 'banner banner-info' },
        'As a guest, your result is shown but not saved. ',
        h('a', { href: '#/signup' }, 'Create an account'), ' or ', h('a', { href: '#/signin' }, 'sign in'),
        ' to keep a private history.'),
    h('details', { class: 'card tips' },
      h('summary', {}, 'Tips for a good photo'),
      h('ul', {},
        h('li', {}, 'Fill most of the frame with the spot; keep the camera parallel to the skin.'),
        h('li', {}, 'Use daylight or bright, even light; avoid flash glare and shadows.'),
        h('li', {}, 'Hold still until the photo is sharp. One spot per photo.'))));

  showPreview();
  const inFlight = checks.current();
  if (inFlight) follow(inFlight);
  else {
    const missed = checks.takeError(); // it failed while the person was on another screen
    if (missed) showError(missed, { focus: false });
  }
  return () => {
    unwatch?.();
    view.removeAttribute('aria-busy'); // #view outlives this screen
  };
}
