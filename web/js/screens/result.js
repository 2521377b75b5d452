// One result: verdict, probability gauge, heatmap, what it means, the disclaimer; for signed-in
// users also the PDF report and delete.

import * as api from '../api.js';
import * as auth from '../auth.js';
import {
  CLASS_NAMES, VERDICTS, disclaimer, errorCard, gauge, verdictBadge,
} from '../components.js';
import { announce, escapeCancels, formatDate, h, percent, replace } from '../dom.js';
import { heatmapViewer } from '../heatmap.js';
import { state } from '../state.js';

export const title = 'Result';
export const access = 'started';

async function load(id) {
  const last = state.lastResult;
  if (!id) return last ? { ...last.result, photoUrl: last.photoUrl, created_at: last.result.created_at || last.receivedAt } : null;
  const prediction = await api.getPrediction(id);
  // Right after an upload the local copy of the photo is already here: no need to download it.
  const photoUrl = last?.result?.id === id && last.photoUrl ? last.photoUrl : prediction.image_url;
  return { ...prediction, photoUrl };
}

function explanation(r) {
  const info = VERDICTS[r.verdict];
  const items = [
    h('p', { class: 'verdict-explain', text: info.explain }),
  ];
  if (r.verdict === 'unknown') {
    items.push(h('div', { class: 'unknown-explain', dataset: { testid: 'unknown-explanation' } },
      h('h3', { text: 'What "unknown" means' }),
      h('p', {},
        'SkinScan only answers for photos that resemble the skin-lesion close-ups it learned from. ',
        'This photo is too different (it may not show skin, or be blurred, too far away, or badly lit), ',
        'so any benign or malignant answer would be a guess. It says nothing about whether a spot is harmless.')));
  }
  // The model's own terms (its scores against its thresholds) stay in Details.
  items.push(h('p', { class: 'verdict-advice', text: info.advice }));
  return items;
}

function details(r) {
  const probs = Object.entries(r.probabilities || {}).sort((a, b) => b[1] - a[1]);
  const topP = r.top_class ? r.probabilities?.[r.top_class] : undefined;
  return h('details', { class: 'card' },
    h('summary', {}, 'Details'),
    h('dl', { class: 'facts' },
      r.top_class && [h('dt', { text: 'Most similar to' }), h('dd', { text: CLASS_NAMES[r.top_class] || r.top_class })],
      // The top class's own probability: `confidence` is that of the benign/malignant call.
      topP !== undefined && [h('dt', { text: 'Probability of that diagnosis' }), h('dd', { text: percent(topP) })],
      r.reason && [h('dt', { text: 'How the model decided' }), h('dd', { text: r.reason })],
      r.model_version && [h('dt', { text: 'Model version' }), h('dd', { text: r.model_version })],
      r.created_at && [h('dt', { text: 'Date' }), h('dd', { text: formatDate(r.created_at) })]),
    probs.length > 0 && h('table', { class: 'probs' },
      h('caption', { text: 'Probability of each diagnosis the model knows' }),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Diagnosis' }), h('th', { scope: 'col', text: 'Probability' }))),
      h('tbody', {}, probs.map(([cls, p]) => h('tr', {},
        h('th', { scope: 'row', text: CLASS_NAMES[cls] || cls }), h('td', { text: percent(p, 1) }))))));
}

function actions(r, { go }) {
  const signedIn = auth.mode() === 'user' && Boolean(r.id);
  const feedback = h('div', { class: 'feedback' });
  const buttons = h('div', { class: 'actions' },
    h('a', { class: 'button primary', href: '#/home' }, 'Check another photo'));
  if (signedIn) {
    const pdf = h('button', { type: 'button', class: 'button', id: 'download-pdf' }, 'Download PDF report');
    pdf.addEventListener('click', async () => {
      pdf.disabled = true;
      replace(feedback);
      try {
        const blob = await api.reportPdf(r.id);
        const url = URL.createObjectURL(blob);
        const day = (r.created_at || new Date().toISOString()).slice(0, 10);
        const link = h('a', { href: url, download: `skinscan-report-${day}.pdf`, hidden: true });
        document.body.append(link);
        link.click();
        link.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60_000);
        announce('PDF report downloaded');
      } catch (err) {
        replace(feedback, errorCard(err, { onRetry: () => pdf.click() }));
      } finally {
        pdf.disabled = false;
      }
    });
    const del = deleteButton(r.id, feedback, () => {
      state.flash = 'The result was deleted.';
      if (state.lastResult?.result?.id === r.id) state.lastResult = null;
      go('#/history');
    });
    buttons.append(pdf, del);
  }
  return h('div', {}, buttons, feedback);
}

/** "Delete" that asks once more inline (no modal dialog to trap focus). */
/** `name`: the button's accessible name where several sit side by side (a history list). */
export function deleteButton(id, feedback, onDeleted, label = 'Delete', name = null) {
  const wrap = h('span', { class: 'confirm' });
  const ask = h('button', {
    type: 'button', class: 'button danger', dataset: { action: 'delete' }, ...(name ? { 'aria-label': name } : {}),
  }, label);
  const yes = h('button', { type: 'button', class: 'button danger', dataset: { action: 'confirm-delete' } }, 'Yes, delete');
  const no = h('button', { type: 'button', class: 'button' }, 'Cancel');
  const question = h('span', { class: 'confirm-question', role: 'group', 'aria-label': 'Confirm deletion' },
    h('span', { text: 'Delete this result for good?' }), yes, no);
  question.hidden = true;
  ask.addEventListener('click', () => { ask.hidden = true; question.hidden = false; yes.focus(); });
  no.addEventListener('click', () => { question.hidden = true; ask.hidden = false; ask.focus(); });
  escapeCancels(question, no, yes);
  yes.addEventListener('click', async () => {
    yes.disabled = true;
    try {
      await api.deletePrediction(id);
      announce('Result deleted');
      onDeleted();
    } catch (err) {
      if (err.status === 404) { onDeleted(); return; } // already gone
      replace(feedback, errorCard(err, { onRetry: () => yes.click() }));
    } finally {
      yes.disabled = false;
    }
  });
  wrap.append(ask, question);
  return wrap;
}

export async function render(view, params, ctx) {
  const [id] = params;
  const heading = h('h1', { text: 'Your result' });
  view.append(heading);
  const body = h('div', { class: 'result', 'aria-busy': 'true' }, h('p', { class: 'hint' }, 'Loading…'));
  view.append(body);

  let r;
  try {
    r = await load(id);
  } catch (err) {
    if (err.code === 'session_ended') throw err;
    replace(body, errorCard(err, {
      onRetry: () => ctx.go(location.hash),
      retryOnline: true,
      extra: [h('a', { class: 'button', href: '#/history' }, 'Back to history')],
    }));
    body.removeAttribute('aria-busy');
    return;
  }
  body.removeAttribute('aria-busy');
  if (!r) {
    replace(body, h('div', { class: 'card' },
      h('p', {}, 'There is no result to show. Guests\' results are not kept once you leave them.'),
      h('a', { class: 'button primary', href: '#/home' }, 'Check a photo')));
    return;
  }
  if (r.status && r.status !== 'done') {
    replace(body, h('div', { class: 'card' },
      h('p', {}, r.status === 'failed'
        ? `This photo could not be checked: ${r.error || 'unknown error'}`
        : 'This photo is still being checked. Reload in a moment.'),
      actions(r, ctx)));
    return;
  }

  const info = VERDICTS[r.verdict] || VERDICTS.unknown;
  replace(body,
    h('section', { class: `card verdict verdict-${r.verdict}`, 'aria-labelledby': 'verdict-title', dataset: { verdict: r.verdict } },
      h('h2', { id: 'verdict-title', class: 'card-title' }, verdictBadge(r.verdict)),
      r.verdict !== 'unknown'
        ? gauge(r.p_malignant, { threshold: r.threshold })
        : h('p', { class: 'hint' }, 'No probability is given for photos the model does not recognise.'),
      ...explanation(r)),
    r.verdict === 'unknown' && !r.heatmap_url && !r.overlay_url
      ? null
      : heatmapViewer({ photoUrl: r.photoUrl, heatmapUrl: r.heatmap_url, overlayUrl: r.overlay_url }),
    details(r),
    disclaimer(),
    actions(r, ctx),
    !id && h('p', { class: 'banner banner-info' }, 'As a guest this result is not saved. ', h('a', { href: '#/signup' }, 'Create an account'), ' to keep a history.'));
  document.title = `${info.short} · Result · SkinScan`;
  // The outcome itself, for screen-reader users (the router says it after the screen's title).
  const p = r.verdict !== 'unknown' && r.p_malignant !== null && r.p_malignant !== undefined
    ? ` ${percent(r.p_malignant)} estimated probability of malignancy.` : '';
  ctx.say?.(`${info.label}.${p}`);
}
