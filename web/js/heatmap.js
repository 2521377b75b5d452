// The Grad-CAM viewer: the photo framed as the model saw it, with the heatmap on top
// (opacity slider), or the photo and the server's overlay side by side.
//
// The engine frames every photo before scoring (turned landscape if it was portrait, then
// centre-cropped to the model's aspect); its heatmap and overlay PNGs use that framing. The
// viewer frames the photo the same way on a canvas so the heatmap lines up with it.

import { h, newId, replace } from './dom.js';

/** The same "jet" ramp the engine uses for its overlays: 256 RGB entries. */
function jetLut() {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i += 1) {
    const v = i / 255;
    [3, 2, 1].forEach((c, ch) => {
      lut[i * 3 + ch] = Math.round(Math.min(1, Math.max(0, 1.5 - Math.abs(4 * v - c))) * 255);
    });
  }
  return lut;
}
const JET = jetLut();

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    const sameOrigin = src.startsWith('blob:') || src.startsWith('data:')
      || new URL(src, location.href).origin === location.origin;
    if (!sameOrigin) img.crossOrigin = 'anonymous'; // presigned S3 URLs (bucket CORS)
    img.decoding = 'async';
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`image failed to load: ${src.slice(0, 60)}`));
    img.src = src;
  });
}

/** Draw `img` on a canvas framed like the engine: landscape-or-portrait like the target, centre crop. */
export function framePhoto(img, targetW, targetH, maxWidth = 768) {
  let w = img.naturalWidth;
  let hgt = img.naturalHeight;
  const rotate = (w >= hgt) !== (targetW >= targetH) && w !== hgt;
  if (rotate) [w, hgt] = [hgt, w];
  const aspect = targetW / targetH;
  let cropW = w;
  let cropH = hgt;
  if (w / hgt > aspect) cropW = Math.round(hgt * aspect);
  else if (w / hgt < aspect) cropH = Math.round(w / aspect);
  const outW = Math.min(maxWidth, cropW);
  const outH = Math.round(outW / aspect);
  const canvas = h('canvas', { width: outW, height: outH });
  const ctx = canvas.getContext('2d');
  const scale = outW / cropW;
  ctx.save();
  // Work in the rotated frame's coordinates, origin at the crop's top-left corner.
  ctx.scale(scale, scale);
  ctx.translate(-(w - cropW) / 2, -(hgt - cropH) / 2);
  if (rotate) {
    // PIL's ROTATE_90 is counter-clockwise: source (x, y) lands at (y, W - x), where W, the
    // source's width, is the turned frame's height (hgt after the swap above).
    ctx.translate(0, hgt);
    ctx.rotate(-Math.PI / 2);
  }
  ctx.drawImage(img, 0, 0);
  ctx.restore();
  return canvas;
}

/** A canvas with the grey map coloured through the jet ramp (throws if pixels can't be read). */
function colourise(greyImg) {
  const canvas = h('canvas', { width: greyImg.naturalWidth, height: greyImg.naturalHeight });
  const ctx = canvas.getContext('2d');
  ctx.drawImage(greyImg, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const px = data.data;
  for (let i = 0; i < px.length; i += 4) {
    const v = px[i];
    px[i] = JET[v * 3];
    px[i + 1] = JET[v * 3 + 1];
    px[i + 2] = JET[v * 3 + 2];
    px[i + 3] = 255;
  }
  ctx.putImageData(data, 0, 0);
  return canvas;
}

/**
 * Build the viewer. `photoUrl`: the original photo; `heatmapUrl`: raw 8-bit map; `overlayUrl`:
 * the map blended on the framed photo. Returns the element (filled in once the images load).
 */
export function heatmapViewer({ photoUrl, heatmapUrl, overlayUrl }) {
  const root = h('section', { class: 'card heatmap', 'aria-labelledby': 'heatmap-title' });
  const stage = h('div', { class: 'heatmap-stage', 'aria-busy': 'true' },
    h('p', { class: 'hint' }, 'Loading the heatmap…'));
  const opacityId = newId('opacity');
  const opacity = h('input', {
    type: 'range', id: opacityId, min: 0, max: 100, step: 5, value: 55,
    'aria-describedby': `${opacityId}-hint`,
  });
  const opacityValue = h('output', { for: opacityId, text: '55%' });
  const modeName = newId('mode');
  const radio = (value, label, checked) => {
    const id = `${modeName}-${value}`;
    return h('span', { class: 'segment' },
      h('input', { type: 'radio', name: modeName, id, value, checked }),
      h('label', { for: id, text: label }));
  };
  const modes = h('fieldset', { class: 'segmented' },
    h('legend', { class: 'visually-hidden', text: 'Heatmap view' }),
    radio('overlay', 'Overlay', true),
    radio('side', 'Side by side', false));
  const opacityRow = h('div', { class: 'field range' },
    h('label', { for: opacityId }, 'Heatmap opacity ', opacityValue),
    opacity,
    h('p', { id: `${opacityId}-hint`, class: 'hint' }, 'Slide left to see the photo, right to see the heatmap.'));

  root.append(
    h('h2', { id: 'heatmap-title', class: 'card-title', text: 'Where the model looked' }),
    h('p', { class: 'hint' },
      'Red and yellow areas influenced the answer most, blue areas least (Grad-CAM). The photo is shown framed the way the model saw it.'),
    h('p', { class: 'hint', 'data-testid': 'heatmap-caveat' },
      'The map is coarse and partly the same for every photo; its brightest part is usually on the spot, but it spreads over the skin around it too: read it as a rough hint of what the model used, not as an outline of the spot.'),
    modes, stage, opacityRow,
    h('div', { class: 'legend', 'aria-hidden': 'true' }, h('span', { text: 'less' }), h('span', { class: 'legend-ramp' }), h('span', { text: 'more' })));

  if (!heatmapUrl && !overlayUrl) {
    replace(stage, h('p', { class: 'hint' }, 'No heatmap is available for this result.'));
    stage.removeAttribute('aria-busy');
    opacityRow.hidden = true;
    modes.hidden = true;
    return root;
  }

  (async () => {
    const [photo, grey, overlay] = await Promise.all([
      photoUrl ? loadImage(photoUrl).catch(() => null) : null,
      heatmapUrl ? loadImage(heatmapUrl).catch(() => null) : null,
      overlayUrl ? loadImage(overlayUrl).catch(() => null) : null,
    ]);
    const ref = grey || overlay;
    if (!ref) throw new Error('heatmap images failed to load');
    const framed = photo ? framePhoto(photo, ref.naturalWidth, ref.naturalHeight) : null;
    let layer = null;
    if (grey) {
      try { layer = colourise(grey); } catch { layer = null; } // cross-origin without CORS
    }
    if (!layer && overlay) layer = overlay.cloneNode();
    const base = labelled(framed || overlay.cloneNode(), 'Your photo');
    base.classList.add('heatmap-base');
    labelled(layer, 'Grad-CAM heatmap').classList.add('heatmap-layer');

    const stack = h('div', { class: 'heatmap-stack' }, base, layer);
    stack.style.setProperty('aspect-ratio', `${ref.naturalWidth} / ${ref.naturalHeight}`);
    const side = h('div', { class: 'heatmap-side', hidden: true },
      h('figure', {}, labelled(copyOf(base), 'Your photo'), h('figcaption', { text: 'Photo' })),
      h('figure', {}, labelled(copyOf(overlay || layer), 'Heatmap blended on the photo'),
        h('figcaption', { text: 'Heatmap overlay' })));

    const applyOpacity = () => {
      layer.style.setProperty('opacity', String(opacity.value / 100));
      opacityValue.textContent = `${opacity.value}%`;
    };
    opacity.addEventListener('input', applyOpacity);
    applyOpacity();
    modes.addEventListener('change', () => {
      const sideBySide = modes.querySelector('input:checked').value === 'side';
      stack.hidden = sideBySide;
      side.hidden = !sideBySide;
      opacityRow.hidden = sideBySide;
    });
    replace(stage, stack, side);
    stage.removeAttribute('aria-busy');
    stage.dataset.loaded = 'true';
  })().catch(() => {
    replace(stage, h('p', { class: 'hint' }, 'The heatmap could not be loaded. Reload the page to try again.'));
    stage.removeAttribute('aria-busy');
  });
  return root;
}

function copyOf(node) {
  if (!(node instanceof HTMLCanvasElement)) return node.cloneNode();
  const copy = h('canvas', { width: node.width, height: node.height });
  copy.getContext('2d').drawImage(node, 0, 0);
  return copy;
}

function labelled(node, label) {
  node.setAttribute('role', 'img');
  node.setAttribute('aria-label', label);
  if (node instanceof HTMLImageElement) node.alt = label;
  return node;
}
