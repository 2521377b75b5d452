// Pieces several screens share: form fields, error cards, verdict badge, gauge, disclaimer.

import { h, newId, percent } from './dom.js';
import { describeError } from './errors.js';

/** A labelled input with an optional hint, wired for screen readers. */
export function field({ label, name, type = 'text', autocomplete, hint, required = true, minlength }) {
  const id = newId(name);
  const hintId = hint ? `${id}-hint` : null;
  const input = h('input', {
    id, name, type, autocomplete, required, minlength,
    'aria-describedby': hintId,
  });
  return {
    input,
    node: h('div', { class: 'field' },
      h('label', { for: id, text: label }),
      input,
      hint && h('p', { id: hintId, class: 'hint', text: hint })),
  };
}

/**
 * The "something went wrong" card: title, message, and the actions that make sense.
 * `retryOnline`: a load that failed offline is tried again by itself when the device is back
 * online (nothing is sent that the person did not ask for: an upload only gets new words).
 */
export function errorCard(err, { onRetry, extra = [], retryOnline = false } = {}) {
  const info = describeError(err);
  const message = h('p', { class: 'error-message', text: info.message });
  const card = h('div', { class: 'card card-error', role: 'alert', dataset: { errorCode: err?.code || '' } },
    h('h2', { class: 'card-title', text: info.title }),
    message,
    h('div', { class: 'actions' },
      info.retry && onRetry && h('button', { type: 'button', class: 'button primary', onclick: onRetry }, 'Try again'),
      info.signIn && h('a', { class: 'button', href: '#/signin' }, 'Sign in'),
      ...extra));
  if (err?.code === 'offline' && onRetry) {
    // Otherwise the card would go on saying "You are offline" after the connection is back.
    window.addEventListener('online', () => {
      if (!card.isConnected) return; // replaced or left meanwhile
      if (retryOnline) onRetry();
      else message.textContent = `You're back online. Nothing is lost: press "Try again".`;
    }, { once: true });
  }
  return card;
}

/** A form-level error line (for sign in / sign up). */
export function formError() {
  const node = h('p', { class: 'form-error', role: 'alert', hidden: true });
  return {
    node,
    show(err) {
      node.textContent = describeError(err).message;
      node.hidden = false;
    },
    clear() {
      node.textContent = '';
      node.hidden = true;
    },
  };
}

export const VERDICTS = {
  benign: {
    label: 'Likely benign',
    short: 'Benign',
    explain: 'The model finds this spot most similar to benign (non-cancerous) lesions.',
    advice: 'Keep an eye on it. See a doctor if it changes in size, shape or colour, itches or bleeds.',
  },
  malignant: {
    label: 'Possibly malignant',
    short: 'Malignant',
    explain: 'The model finds features it associates with skin cancer (melanoma, basal cell carcinoma or actinic keratosis).',
    advice: 'Please show this spot to a doctor or dermatologist soon. Many such spots turn out harmless, but only an examination can tell.',
  },
  unknown: {
    label: 'Unknown — not recognised as a skin lesion',
    short: 'Unknown',
    explain: "The photo doesn't look like the close-up skin-lesion images SkinScan was trained on, so it gives no benign or malignant answer rather than guess.",
    advice: 'Try again with a sharp, well-lit close-up in which the spot fills most of the frame. If you are worried about a spot, see a doctor.',
  },
};

export const CLASS_NAMES = {
  nv: 'Melanocytic nevus (mole)',
  bkl: 'Benign keratosis',
  df: 'Dermatofibroma',
  vasc: 'Vascular lesion',
  mel: 'Melanoma',
  bcc: 'Basal cell carcinoma',
  akiec: 'Actinic keratosis / intraepithelial carcinoma',
};

export function verdictBadge(verdict, { small = false } = {}) {
  const info = VERDICTS[verdict] || { short: verdict || 'Pending', label: verdict || 'Pending' };
  return h('span', { class: `badge badge-${verdict || 'pending'}${small ? ' badge-small' : ''}` },
    small ? info.short : info.label);
}

/** p_malignant as a horizontal gauge from 0 to 100 % with a needle (and the threshold, if known). */
export function gauge(p, { threshold } = {}) {
  const value = Math.min(1, Math.max(0, Number(p) || 0));
  const labelId = newId('gauge');
  return h('div', { class: 'gauge-wrap' },
    h('p', { id: labelId, class: 'gauge-label' },
      'Estimated probability of malignancy: ',
      h('strong', { class: 'gauge-value', text: percent(value) })),
    h('div', {
      class: 'gauge', role: 'meter', 'aria-labelledby': labelId,
      'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Math.round(value * 100),
      'aria-valuetext': `${percent(value)} probability of malignancy`,
      style: { '--p': value },
    },
    h('span', { class: 'gauge-needle', 'aria-hidden': 'true' }),
    threshold !== undefined && threshold !== null && h('span', {
      class: 'gauge-threshold', 'aria-hidden': 'true', style: { '--t': threshold }, title: 'decision threshold',
    })),
    h('div', { class: 'gauge-scale', 'aria-hidden': 'true' },
      h('span', { text: '0%' }), h('span', { text: '50%' }), h('span', { text: '100%' })));
}

export function disclaimer() {
  return h('aside', { class: 'card disclaimer', 'aria-label': 'Not a diagnosis' },
    h('h2', { class: 'card-title', text: 'This is not a diagnosis' }),
    h('p', {},
      'SkinScan is a research and education tool. Its answer comes from a computer model and can be ',
      'wrong, in both directions. It does not replace a doctor. If a spot is new, changing, itching, ',
      'bleeding or worries you, see a doctor or dermatologist whatever SkinScan says.'),
    h('p', { class: 'hint' },
      'The model was trained on the HAM10000 dermoscopy images (Tschandl et al., 2018; CC BY-NC 4.0).'));
}
