// The signed-in user's previous results: newest first, filter by verdict, load more, open, delete.

import * as api from '../api.js';
import { STORED_EVENT } from '../checks.js';
import { VERDICTS, errorCard, verdictBadge } from '../components.js';
import { append, formatDate, h, percent, replace } from '../dom.js';
import { state, takeFlash } from '../state.js';
import { deleteButton } from './result.js';

export const title = 'History';
export const access = 'user';

const PAGE = 20;
const THUMB_CONCURRENCY = 4;

/**
 * Thumbnails: the list answer's `image_url` when it carries one, else each item's detail,
 * fetched a few at a time.
 */
function loadThumbnails(items) {
  const jobs = items.filter(({ item, img }) => {
    if (item.image_url) img.src = item.image_url;
    return !item.image_url;
  });
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const { item: { id }, img } = jobs[next];
      next += 1;
      try {
        const detail = await api.getPrediction(id);
        const src = detail.image_url || detail.overlay_url;
        if (src && img.isConnected) img.src = src;
      } catch {
        // A missing thumbnail is not worth an error message: the row still works.
      }
    }
  };
  return Promise.all(Array.from({ length: THUMB_CONCURRENCY }, worker));
}

function row(item, onDeleted) {
  const feedback = h('div', { class: 'feedback' });
  const img = h('img', { class: 'thumb', alt: '', width: 64, height: 48 });
  const verdict = item.status === 'done' ? item.verdict : item.status;
  const li = h('li', { class: 'history-item', dataset: { id: item.id, verdict: verdict || '' } },
    h('a', { class: 'history-link', href: `#/result/${encodeURIComponent(item.id)}` },
      img,
      h('span', { class: 'history-text' },
        verdictBadge(verdict, { small: true }),
        item.verdict && item.verdict !== 'unknown' && item.p_malignant !== null
          ? h('span', { class: 'history-p', text: `${percent(item.p_malignant)} malignancy` })
          : null,
        h('time', { datetime: item.created_at, text: formatDate(item.created_at) }),
        h('span', { class: 'visually-hidden', text: ' Open result' }))),
    deleteButton(item.id, feedback, () => {
      // Focus would fall to <body> with the removed button: keep it in the list instead.
      const neighbour = li.nextElementSibling || li.previousElementSibling;
      li.remove();
      onDeleted(neighbour?.querySelector('a.history-link') || null);
    }, 'Delete', deleteName(item, verdict)),
    feedback);
  return { li, img };
}

/**
 * The Delete button's accessible name: a screen reader's list of buttons must tell the rows
 * apart, also for results from the same minute (so the seconds and the verdict are in it).
 */
function deleteName(item, verdict) {
  const what = VERDICTS[verdict]?.short || verdict || 'pending';
  return `Delete the result of ${formatDate(item.created_at, { seconds: true })} (${what})`;
}

export async function render(view, params, { go }) {
  const flash = takeFlash();
  const filter = h('select', { id: 'history-filter', name: 'verdict' },
    h('option', { value: '' }, 'All results'),
    Object.entries(VERDICTS).map(([value, info]) => h('option', { value }, info.short)));
  // The filter lives in the address (#/history/malignant), so Back from a result, a reload or a
  // bookmark shows the same list.
  filter.value = Object.hasOwn(VERDICTS, params[0] || '') ? params[0] : '';
  const list = h('ul', { class: 'history-list', 'aria-label': 'Your results' });
  const status = h('div', { class: 'feedback' });
  const more = h('button', { type: 'button', class: 'button block', hidden: true }, 'Load more');
  let cursor = null;
  // Each load takes a number; an answer that comes back after a newer load started (the filter
  // changed again, or changed during "Load more") is dropped, so rows never mix or repeat.
  let generation = 0;

  const updateEmpty = () => {
    if (list.children.length === 0) {
      replace(status, h('div', { class: 'card empty', tabindex: '-1' },
        h('p', {}, filter.value ? 'No results with this verdict.' : 'No results yet.'),
        h('a', { class: 'button primary', href: '#/home' }, 'Check a photo')));
    }
  };
  const afterDelete = (next) => { // deleteButton has said "Result deleted"
    updateEmpty();
    (next || status.querySelector('.empty') || view.querySelector('h1'))?.focus();
  };

  async function loadPage(reset) {
    const mine = ++generation;
    if (reset) { list.replaceChildren(); cursor = null; }
    more.disabled = true;
    replace(status, h('p', { class: 'hint', role: 'status' }, 'Loading…'));
    try {
      const page = await api.listPredictions({ cursor, verdict: filter.value, limit: PAGE });
      if (mine !== generation) return;
      replace(status);
      // A result added at the top while this page loaded (a check that finished) is not
      // listed twice.
      const shown = new Set([...list.children].map((li) => li.dataset.id));
      const jobs = page.items.filter((item) => !shown.has(item.id)).map((item) => {
        const { li, img } = row(item, afterDelete);
        list.append(li);
        return { item, img };
      });
      cursor = page.next_cursor;
      more.hidden = !cursor;
      updateEmpty();
      loadThumbnails(jobs);
    } catch (err) {
      if (mine !== generation) return;
      if (err.code === 'session_ended') throw err;
      replace(status, errorCard(err, { onRetry: () => loadPage(reset).catch(signInAgain), retryOnline: true }));
    } finally {
      if (mine === generation) more.disabled = false;
    }
  }

  const signInAgain = (err) => {
    state.flash = err?.message || 'Please sign in again.';
    go('#/signin');
  };
  filter.addEventListener('change', () => {
    // replaceState: no new history entry per choice, and no hashchange (no re-render).
    window.history.replaceState(null, '', filter.value ? `#/history/${filter.value}` : '#/history');
    loadPage(true).catch(signInAgain);
  });
  more.addEventListener('click', () => loadPage(false).catch(signInAgain));

  // A check that finishes while the list is shown (it goes on when the person leaves Scan):
  // its result goes to the top, as a reload would put it, when it passes the filter.
  const onStored = async ({ detail: { id } }) => {
    let item;
    try {
      item = await api.getPrediction(id);
    } catch {
      return; // the banner still leads to the result; the next visit lists it
    }
    const verdict = item.status === 'done' ? item.verdict : item.status;
    if (!view.isConnected || (filter.value && filter.value !== verdict)) return;
    if ([...list.children].some((li) => li.dataset.id === item.id)) return;
    const { li, img } = row(item, afterDelete);
    list.prepend(li);
    if (status.querySelector('.empty')) replace(status);
    loadThumbnails([{ item, img }]);
  };
  window.addEventListener(STORED_EVENT, onStored);

  append(view,
    h('h1', { text: 'Your results' }),
    flash && h('p', { class: 'banner banner-info', role: 'status', text: flash }),
    h('div', { class: 'toolbar' },
      h('label', { for: 'history-filter' }, 'Show'),
      filter,
      h('a', { class: 'button primary', href: '#/home' }, 'New check')),
    list, status, more);
  const cleanup = () => window.removeEventListener(STORED_EVENT, onStored);
  try {
    await loadPage(true);
  } catch (err) {
    cleanup();
    throw err;
  }
  return cleanup;
}
