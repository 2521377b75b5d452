// Tiny DOM helpers: build elements without innerHTML (nothing from the server is parsed as HTML).

/**
 * h('button', {class: 'primary', onclick: fn}, 'Save') -> <button class="primary">Save</button>
 * Attributes: `class`, `text`, `on<event>` (listener), `dataset` and `style` (objects), booleans,
 * anything else via setAttribute. Children: nodes, strings, or null/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'style') {
      // Through the CSSOM: the Content-Security-Policy forbids inline style attributes.
      for (const [prop, v] of Object.entries(value)) el.style.setProperty(prop, String(v));
    }
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

/** Append children to `el`, skipping null/false (so `cond && node` can be passed). */
export function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace everything inside `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
/** A unique id for label/aria wiring. */
export function newId(prefix = 'id') {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** Tell screen-reader users what just happened (polite live region). */
export function announce(message) {
  const region = document.getElementById('status');
  if (!region) return;
  region.textContent = '';
  // A fresh text node after a tick makes repeated identical messages be read again.
  setTimeout(() => { region.textContent = message; }, 50);
}

/** A date and time in the person's own format; `seconds` where two in a minute must differ. */
export function formatDate(iso, { seconds = false } = {}) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  return date.toLocaleString(undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
    ...(seconds ? { second: '2-digit' } : {}),
  });
}

export function percent(p, digits = 0) {
  return `${(Number(p) * 100).toFixed(digits)}%`;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
// Simple line icons (24x24, drawn with the current text colour): [element, attributes] lists.
const ICONS = {
  camera: [
    ['path', { d: 'M3 8h4l2-3h6l2 3h4v11H3z' }],
    ['circle', { cx: 12, cy: 13, r: 3.5 }],
  ],
  image: [
    ['rect', { x: 3, y: 4, width: 18, height: 16, rx: 2 }],
    ['circle', { cx: 8.5, cy: 9.5, r: 1.5 }],
    ['path', { d: 'M3 18l5-5 4 4 3-3 6 6' }],
  ],
};

/** An inline SVG icon, hidden from assistive technology (the text next to it says it all). */
export function icon(name, size = 28) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  for (const [k, v] of Object.entries({
    viewBox: '0 0 24 24', width: size, height: size, fill: 'none', stroke: 'currentColor',
    'stroke-width': 2, 'stroke-linejoin': 'round', 'stroke-linecap': 'round',
    'aria-hidden': 'true', focusable: 'false', class: 'icon',
  })) svg.setAttribute(k, String(v));
  for (const [tag, attrs] of ICONS[name]) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    svg.append(el);
  }
  return svg;
}

/** Escape inside `group` presses `cancel`, as it would close a dialog (not while `yes` works). */
export function escapeCancels(group, cancel, yes) {
  group.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape' || yes.disabled) return;
    event.preventDefault();
    cancel.click();
  });
}
