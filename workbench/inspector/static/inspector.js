/**
 * The inspector's front end: draws what the kernel sends (a JSON description of the view and its arrays
 * as binary buffers) with canvas, SVG and HTML, coloured from JupyterLab's theme variables.
 *
 * Loaded by anywidget (no build step); the pure functions are exported for the unit tests.
 *
 *   const rgba = panelPixels(values, 0, 8, 8, 0, 1, 'viridis');   // 8x8 floats -> RGBA bytes
 */

/** 256-entry colour maps, the same as matplotlib's (RRGGBB per entry). */
const COLOUR_MAPS = {
  viridis: "44015444025645045745055946075a46085c460a5d460b5e470d60470e6147106347116447136548146748166848176948186a481a6c481b6d481c6e481d6f481f70482071482173482374482475482576482677482878482979472a7a472c7a472d7b472e7c472f7d46307e46327e46337f463480453581453781453882443983443a83443b84433d84433e85423f854240864241864142874144874045884046883f47883f48893e49893e4a893e4c8a3d4d8a3d4e8a3c4f8a3c508b3b518b3b528b3a538b3a548c39558c39568c38588c38598c375a8c375b8d365c8d365d8d355e8d355f8d34608d34618d33628d33638d32648e32658e31668e31678e31688e30698e306a8e2f6b8e2f6c8e2e6d8e2e6e8e2e6f8e2d708e2d718e2c718e2c728e2c738e2b748e2b758e2a768e2a778e2a788e29798e297a8e297b8e287c8e287d8e277e8e277f8e27808e26818e26828e26828e25838e25848e25858e24868e24878e23888e23898e238a8d228b8d228c8d228d8d218e8d218f8d21908d21918c20928c20928c20938c1f948c1f958b1f968b1f978b1f988b1f998a1f9a8a1e9b8a1e9c891e9d891f9e891f9f881fa0881fa1881fa1871fa28720a38620a48621a58521a68522a78522a88423a98324aa8325ab8225ac8226ad8127ad8128ae8029af7f2ab07f2cb17e2db27d2eb37c2fb47c31b57b32b67a34b67935b77937b87838b9773aba763bbb753dbc743fbc7340bd7242be7144bf7046c06f48c16e4ac16d4cc26c4ec36b50c46a52c56954c56856c66758c7655ac8645cc8635ec96260ca6063cb5f65cb5e67cc5c69cd5b6ccd5a6ece5870cf5773d05675d05477d1537ad1517cd2507fd34e81d34d84d44b86d54989d5488bd6468ed64590d74393d74195d84098d83e9bd93c9dd93ba0da39a2da37a5db36a8db34aadc32addc30b0dd2fb2dd2db5de2bb8de29bade28bddf26c0df25c2df23c5e021c8e020cae11fcde11dd0e11cd2e21bd5e21ad8e219dae319dde318dfe318e2e418e5e419e7e419eae51aece51befe51cf1e51df4e61ef6e620f8e621fbe723fde725",
  gray: "0000000101010202020303030404040505050606060707070808080909090a0a0a0b0b0b0c0c0c0d0d0d0e0e0e0f0f0f1010101111111212121313131414141515151616161717171818181919191a1a1a1b1b1b1c1c1c1d1d1d1e1e1e1f1f1f2020202121212222222323232424242525252626262727272828282929292a2a2a2b2b2b2c2c2c2d2d2d2e2e2e2f2f2f3030303131313232323333333434343535353636363737373838383939393a3a3a3b3b3b3c3c3c3d3d3d3e3e3e3f3f3f4040404141414242424343434444444545454646464747474848484949494a4a4a4b4b4b4c4c4c4d4d4d4e4e4e4f4f4f5050505151515252525353535454545555555656565757575858585959595a5a5a5b5b5b5c5c5c5d5d5d5e5e5e5f5f5f6060606161616262626363636464646565656666666767676868686969696a6a6a6b6b6b6c6c6c6d6d6d6e6e6e6f6f6f7070707171717272727373737474747575757676767777777878787979797a7a7a7b7b7b7c7c7c7d7d7d7e7e7e7f7f7f8080808181818282828383838484848585858686868787878888888989898a8a8a8b8b8b8c8c8c8d8d8d8e8e8e8f8f8f9090909191919292929393939494949595959696969797979898989999999a9a9a9b9b9b9c9c9c9d9d9d9e9e9e9f9f9fa0a0a0a1a1a1a2a2a2a3a3a3a4a4a4a5a5a5a6a6a6a7a7a7a8a8a8a9a9a9aaaaaaabababacacacadadadaeaeaeafafafb0b0b0b1b1b1b2b2b2b3b3b3b4b4b4b5b5b5b6b6b6b7b7b7b8b8b8b9b9b9babababbbbbbbcbcbcbdbdbdbebebebfbfbfc0c0c0c1c1c1c2c2c2c3c3c3c4c4c4c5c5c5c6c6c6c7c7c7c8c8c8c9c9c9cacacacbcbcbcccccccdcdcdcecececfcfcfd0d0d0d1d1d1d2d2d2d3d3d3d4d4d4d5d5d5d6d6d6d7d7d7d8d8d8d9d9d9dadadadbdbdbdcdcdcdddddddedededfdfdfe0e0e0e1e1e1e2e2e2e3e3e3e4e4e4e5e5e5e6e6e6e7e7e7e8e8e8e9e9e9eaeaeaebebebecececedededeeeeeeefefeff0f0f0f1f1f1f2f2f2f3f3f3f4f4f4f5f5f5f6f6f6f7f7f7f8f8f8f9f9f9fafafafbfbfbfcfcfcfdfdfdfefefeffffff",
  RdBu_r: "05306106326407346708366a09386d0a3b700c3d730d3f760e41790f437b10457e114781124984134c87144e8a15508d1752901854931956961a58991b5a9c1c5c9f1d5fa21e61a51f63a82065ab2267ac2369ad246aae266caf276eb02870b12a71b22b73b32c75b42e77b52f79b5307ab6327cb7337eb83480b93681ba3783bb3885bc3a87bd3b88be3c8abe3e8cbf3f8ec0408fc14291c24393c34695c44997c54c99c64f9bc7529dc8569fc959a1ca5ca3cb5fa5cd62a7ce65a9cf68abd06bacd16eaed271b0d375b2d478b4d57bb6d67eb8d781bad884bcd987beda8ac0db8dc2dc90c4dd93c6de96c7df98c8e09bc9e09dcbe1a0cce2a2cde3a5cee3a7d0e4a9d1e5acd2e5aed3e6b1d5e7b3d6e8b6d7e8b8d8e9bbdaeabddbeac0dcebc2ddecc5dfecc7e0edcae1eecce2efcfe4efd1e5f0d2e6f0d4e6f1d5e7f1d7e8f1d8e9f1dae9f2dbeaf2ddebf2deebf2e0ecf3e1edf3e3edf3e4eef4e6eff4e7f0f4e9f0f4eaf1f5ecf2f5edf2f5eff3f5f0f4f6f2f5f6f3f5f6f5f6f7f6f7f7f7f6f6f7f5f4f8f4f2f8f3f0f8f2eff8f1edf9f0ebf9efe9f9eee7f9ede5f9ebe3faeae1fae9dffae8defae7dcfbe6dafbe5d8fbe4d6fbe3d4fce2d2fce0d0fcdfcffcdecdfdddcbfddcc9fddbc7fdd9c4fcd7c2fcd5bffcd3bcfbd0b9fbceb7fbccb4facab1fac8aff9c6acf9c4a9f9c2a7f8bfa4f8bda1f8bb9ef7b99cf7b799f7b596f6b394f6b191f6af8ef5ac8bf5aa89f5a886f4a683f3a481f2a17ff19e7df09c7bef9979ee9677ec9374eb9172ea8e70e98b6ee8896ce6866ae58368e48066e37e64e27b62e17860df765ede735cdd7059dc6e57db6b55da6853d86551d7634fd6604dd55d4cd35a4ad25849d05548cf5246ce4f45cc4c44cb4942c94741c84440c6413ec53e3dc43b3cc2383ac13639bf3338be3036bd2d35bb2a34ba2832b82531b72230b61f2eb41c2db3192cb1182bae172aab162aa81529a51429a213289f12289c1127991027960f27930e26900d268d0c258a0b25870a248409248108237f08237c07227906227605217304217003206d02206a011f67001f",
};

const LUTS = {};

/** The colour map ``name`` as 256 RGB triples (a Uint8Array of 768 bytes). */
export function lut(name) {
  if (!LUTS[name]) {
    const hex = COLOUR_MAPS[name];
    if (!hex) {
      throw new Error(`unknown colour map ${name}`);
    }
    const out = new Uint8Array(768);
    for (let i = 0; i < 768; i++) {
      out[i] = parseInt(hex.substr(2 * i, 2), 16);
    }
    LUTS[name] = out;
  }
  return LUTS[name];
}

/** The colour of ``t`` in [0, 1] on colour map ``name`` as ``rgb(r, g, b)``. */
export function colourAt(name, t) {
  const table = lut(name);
  const i = 3 * Math.max(0, Math.min(255, Math.round((Number.isFinite(t) ? t : 0.5) * 255)));
  return `rgb(${table[i]}, ${table[i + 1]}, ${table[i + 2]})`;
}

/** A number as the inspector writes it everywhere: 4 significant digits, exponent when tiny or huge. */
export function formatValue(v) {
  if (v === null || v === undefined) {
    return '—';
  }
  if (Number.isNaN(v)) {
    return 'NaN';
  }
  if (!Number.isFinite(v)) {
    return v > 0 ? 'Inf' : '-Inf';
  }
  const a = Math.abs(v);
  if (v === 0 || (a >= 1e-3 && a < 1e5)) {
    return String(Number(v.toPrecision(4)));
  }
  return v.toExponential(3).replace(/e([+-])(\d)$/, 'e$10$2'); // 1.000e-05, as Python writes it
}

/** Rows and columns of a near-square grid of ``n`` panels. */
export function gridShape(n) {
  const cols = Math.max(1, Math.ceil(Math.sqrt(n)));
  return { rows: Math.ceil(n / cols), cols };
}

/**
 * RGBA bytes of one ``h`` x ``w`` panel of ``values`` (from ``offset``), scaled from [lo, hi] onto a
 * colour map (hi < lo reverses it). NaN is red, +Inf/-Inf the top/bottom of the scale; a flat panel is
 * drawn at the bottom.
 */
export function panelPixels(values, offset, h, w, lo, hi, cmap) {
  const table = lut(cmap);
  const out = new Uint8ClampedArray(h * w * 4);
  const span = hi !== lo ? hi - lo : 0; // hi < lo reverses the map
  for (let i = 0; i < h * w; i++) {
    const v = values[offset + i];
    let r, g, b;
    if (Number.isNaN(v)) {
      [r, g, b] = [214, 39, 40];
    } else {
      let t = v === Infinity ? 1 : v === -Infinity ? 0 : span ? (v - lo) / span : 0;
      t = Math.max(0, Math.min(1, t));
      const j = 3 * Math.round(t * 255);
      [r, g, b] = [table[j], table[j + 1], table[j + 2]];
    }
    out.set([r, g, b, 255], 4 * i);
  }
  return out;
}

/** IEEE half floats (the bits, as a Uint16Array) as a Float32Array. */
export function halfToFloat(bits) {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    if (exponent === 0) {
      out[i] = sign * 2 ** -14 * (fraction / 1024);
    } else if (exponent === 31) {
      out[i] = fraction ? NaN : sign * Infinity;
    } else {
      out[i] = sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
    }
  }
  return out;
}

/** RGBA bytes of an ``h`` x ``w`` x 3 uint8 image. */
export function rgbPixels(bytes, h, w) {
  const out = new Uint8ClampedArray(h * w * 4);
  for (let i = 0; i < h * w; i++) {
    out.set([bytes[3 * i], bytes[3 * i + 1], bytes[3 * i + 2], 255], 4 * i);
  }
  return out;
}

/**
 * The attribution overlay: the input in grey (``image``: floats in [0, 1], or uint8 RGB) under the
 * attributions coloured on a diverging map from -scale to +scale, blended with opacity ``alpha``.
 */
export function overlayPixels(image, rgb, heat, h, w, scale, alpha, cmap = 'RdBu_r') {
  const table = lut(cmap);
  const out = new Uint8ClampedArray(h * w * 4);
  const s = scale > 0 ? scale : 1;
  for (let i = 0; i < h * w; i++) {
    let grey = 255;
    if (image) {
      grey = rgb
        ? (image[3 * i] + image[3 * i + 1] + image[3 * i + 2]) / 3
        : 255 * (1 - Math.max(0, Math.min(1, image[i]))); // dark strokes on white, as matplotlib's gray_r
    }
    const v = Number.isFinite(heat[i]) ? heat[i] : 0;
    const j = 3 * Math.round(Math.max(0, Math.min(1, 0.5 + 0.5 * (v / s))) * 255);
    const a = image ? alpha : 1;
    out.set(
      [
        (1 - a) * grey + a * table[j],
        (1 - a) * grey + a * table[j + 1],
        (1 - a) * grey + a * table[j + 2],
        255
      ],
      4 * i
    );
  }
  return out;
}

/** The pixel under a pointer at fractions (fx, fy) of a panel: its row, column and value. */
export function pixelAt(panel, values, fx, fy) {
  const [h, w] = panel.array.shape;
  const row = Math.max(0, Math.min(h - 1, Math.floor(fy * h)));
  const col = Math.max(0, Math.min(w - 1, Math.floor(fx * w)));
  const stride = panel.stride || 1;
  let value;
  if (panel.array.shape.length === 3) {
    const i = 3 * (row * w + col);
    value = [values[i], values[i + 1], values[i + 2]].map(v => v / 255);
  } else {
    value = values[row * w + col];
  }
  return { row: row * stride, col: col * stride, value };
}

/** Text for a hovered pixel: ``ch 3 · (row 2, col 5) = 0.731``. */
export function pixelText(title, hit) {
  const value = Array.isArray(hit.value)
    ? `rgb(${hit.value.map(v => formatValue(v)).join(', ')})`
    : formatValue(hit.value);
  return `${title ? title + ' · ' : ''}(row ${hit.row}, col ${hit.col}) = ${value}`;
}

/** Histogram bars in a ``width`` x ``height`` box: one per bin, with the bin's range and count. */
export function histogramBars(counts, edges, width, height) {
  const top = Math.max(1, ...counts);
  const step = width / Math.max(1, counts.length);
  return counts.map((count, i) => ({
    x: i * step,
    y: height - (height * count) / top,
    width: Math.max(step - 0.5, 0.5),
    height: (height * count) / top,
    count,
    lo: edges[i],
    hi: edges[i + 1]
  }));
}

/** Where zero and a value fall on a bar of ``width`` spanning ``domain`` (which includes zero). */
export function barExtent(value, domain, width) {
  const lo = Math.min(0, domain[0]);
  const hi = Math.max(0, domain[1]);
  const span = hi > lo ? hi - lo : 1;
  const zero = ((0 - lo) / span) * width;
  const end = ((Math.max(lo, Math.min(hi, value)) - lo) / span) * width;
  return { x: Math.min(zero, end), width: Math.abs(end - zero), zero };
}

/** Background and text colours of a token with attribution ``score`` on a scale of +-``scale``. */
export function tokenColours(score, scale, cmap = 'RdBu_r') {
  const t = 0.5 + 0.5 * (scale > 0 ? score / scale : 0);
  const table = lut(cmap);
  const j = 3 * Math.round(Math.max(0, Math.min(1, t)) * 255);
  const luminance = (0.299 * table[j] + 0.587 * table[j + 1] + 0.114 * table[j + 2]) / 255;
  return { background: colourAt(cmap, t), color: luminance < 0.5 ? '#fff' : '#000' };
}

// --- drawing -------------------------------------------------------------------------------------

const SVG = 'http://www.w3.org/2000/svg';

function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') {
      e.textContent = v;
    } else {
      e.setAttribute(k, v);
    }
  }
  for (const c of children) {
    if (c) {
      e.append(c);
    }
  }
  return e;
}

function s(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    e.setAttribute(k, String(v));
  }
  if (text !== undefined) {
    e.textContent = text;
  }
  return e;
}

function block(kind, caption) {
  const readout = h('div', { class: 'wb-readout', text: '\u00a0' });
  const head = h('div', { class: 'wb-block-head' }, h('span', { class: 'wb-caption', text: caption || '' }), readout);
  return { root: h('div', { class: `wb-block wb-${kind}` }, head), readout };
}

function putPixels(canvas, pixels, w, hgt) {
  canvas.width = w;
  canvas.height = hgt;
  if (typeof ImageData === 'undefined') {
    return; // no 2-D canvas here (a DOM without graphics, as in the unit tests)
  }
  const ctx = canvas.getContext('2d');
  if (ctx) {
    ctx.putImageData(new ImageData(pixels, w, hgt), 0, 0);
  }
}

function colourBar(cmap, lo, hi, label) {
  const bar = h('div', { class: 'wb-colourbar' });
  const canvas = h('canvas', { class: 'wb-colourbar-ramp' });
  const ramp = new Float32Array(256).map((_, i) => i / 255);
  putPixels(canvas, panelPixels(ramp, 0, 1, 256, 0, 1, cmap), 256, 1);
  bar.append(
    h('span', { class: 'wb-colourbar-lo', text: formatValue(lo) }),
    canvas,
    h('span', { class: 'wb-colourbar-hi', text: formatValue(hi) }),
    h('span', { class: 'wb-colourbar-label', text: label })
  );
  return bar;
}

function hoverCanvas(canvas, readout, describe) {
  canvas.addEventListener('mousemove', event => {
    const r = canvas.getBoundingClientRect();
    if (r.width && r.height) {
      readout.textContent = describe((event.clientX - r.left) / r.width, (event.clientY - r.top) / r.height);
    }
  });
}

function drawGrid(b, arrays) {
  const { root, readout } = block('grid', b.caption);
  const n = b.panels.length;
  const { cols } = gridShape(n);
  const panels = h('div', { class: 'wb-panels' });
  panels.style.gridTemplateColumns = `repeat(${cols}, minmax(0, 1fr))`;
  const [ph, pw] = b.panels[0].array.shape;
  // A single panel fills up to 360 px; grid panels up to 160 px each; the canvas keeps its aspect.
  const each = n === 1 ? 360 : 160;
  panels.style.maxWidth = `${cols * each * Math.min(1, pw / ph) + (cols - 1) * 6}px`;
  for (const panel of b.panels) {
    const values = arrays(panel.array);
    const [ah, aw] = panel.array.shape;
    const canvas = h('canvas', { class: 'wb-pixels', 'data-title': panel.title || '' });
    canvas.style.aspectRatio = `${aw} / ${ah}`;
    putPixels(
      canvas,
      b.rgb ? rgbPixels(values, ah, aw) : panelPixels(values, 0, ah, aw, panel.lo, panel.hi, b.cmap),
      aw,
      ah
    );
    hoverCanvas(canvas, readout, (fx, fy) => pixelText(panel.title, pixelAt(panel, values, fx, fy)));
    const caption = b.rgb
      ? panel.title
      : `${panel.title ? panel.title + ' ' : ''}[${formatValue(panel.lo)}, ${formatValue(panel.hi)}]`;
    panels.append(h('figure', { class: 'wb-panel' }, canvas, caption ? h('figcaption', { text: caption }) : null));
  }
  root.append(panels);
  if (!b.rgb && n > 1) {
    const same = b.shared ? ', the same in both examples' : '';
    root.append(colourBar(b.cmap, 0, 1, `${b.cmap}, each panel scaled to its own range${same}`));
    root.querySelector('.wb-colourbar-lo').textContent = 'panel min';
    root.querySelector('.wb-colourbar-hi').textContent = 'panel max';
  } else if (!b.rgb) {
    const only = b.panels[0];
    root.append(colourBar(b.cmap, only.lo, only.hi, b.shared ? `${b.cmap}, one range for both examples` : b.cmap));
  }
  return root;
}

function drawHistogram(b) {
  const { root, readout } = block('histogram', b.caption);
  const [W, H, left, bottom] = [400, 110, 34, 16];
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'wb-svg', role: 'img' });
  const bars = histogramBars(b.counts, b.edges, W - left - 4, H - bottom - 6);
  for (const bar of bars) {
    const rect = s('rect', {
      x: left + bar.x,
      y: 6 + bar.y,
      width: bar.width,
      height: Math.max(bar.height, bar.count ? 0.5 : 0),
      class: 'wb-hist-bar',
      'data-count': bar.count
    });
    // A transparent full-height target, so thin bars are easy to hover.
    const target = s('rect', { x: left + bar.x, y: 0, width: bar.width, height: H - bottom, class: 'wb-hit' });
    const text = `[${formatValue(bar.lo)}, ${formatValue(bar.hi)}): ${bar.count}`;
    target.append(s('title', {}, text));
    target.addEventListener('mouseenter', () => {
      readout.textContent = text;
      rect.classList.add('wb-hover');
    });
    target.addEventListener('mouseleave', () => rect.classList.remove('wb-hover'));
    svg.append(rect, target);
  }
  const top = Math.max(0, ...b.counts);
  svg.append(
    s('line', { x1: left, x2: W - 4, y1: H - bottom, y2: H - bottom, class: 'wb-axis' }),
    s('text', { x: left - 4, y: 12, class: 'wb-tick', 'text-anchor': 'end' }, String(top)),
    s('text', { x: left - 4, y: H - bottom, class: 'wb-tick', 'text-anchor': 'end' }, '0'),
    s('text', { x: left, y: H - 3, class: 'wb-tick', 'text-anchor': 'start' }, formatValue(b.edges[0])),
    s('text', { x: W - 4, y: H - 3, class: 'wb-tick', 'text-anchor': 'end' }, formatValue(b.edges[b.edges.length - 1]))
  );
  root.append(svg);
  return root;
}

function drawBars(b) {
  const { root, readout } = block('bars', b.caption);
  const [W, row, labelWidth, valueWidth] = [400, 20, 130, 64];
  const H = row * b.rows.length + 4;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'wb-svg', role: 'img' });
  const span = W - labelWidth - valueWidth;
  b.rows.forEach((r, i) => {
    const y = 2 + i * row;
    const extent = barExtent(r.value, b.domain, span);
    const g = s('g', { class: 'wb-bar-row' });
    const label = r.label.length > 20 ? r.label.slice(0, 19) + '…' : r.label;
    const text = `${r.label}: ${formatValue(r.value)}`;
    g.append(
      s('title', {}, text),
      s('rect', { x: 0, y, width: W, height: row, class: 'wb-hit' }),
      s('text', { x: labelWidth - 6, y: y + row / 2 + 4, class: 'wb-label', 'text-anchor': 'end' }, label),
      s('rect', {
        x: labelWidth + extent.x,
        y: y + 3,
        width: Math.max(extent.width, 0.5),
        height: row - 6,
        class: r.value < 0 ? 'wb-bar wb-negative' : 'wb-bar'
      }),
      s('text', { x: labelWidth + span + 4, y: y + row / 2 + 4, class: 'wb-value' }, formatValue(r.value))
    );
    g.addEventListener('mouseenter', () => {
      readout.textContent = text;
      g.classList.add('wb-hover');
    });
    g.addEventListener('mouseleave', () => g.classList.remove('wb-hover'));
    svg.append(g);
  });
  const zero = labelWidth + barExtent(0, b.domain, span).zero;
  svg.append(s('line', { x1: zero, x2: zero, y1: 0, y2: H, class: 'wb-axis' }));
  root.append(svg);
  return root;
}

function drawTable(b) {
  const { root, readout } = block('table', b.caption);
  const table = h('table', { class: 'wb-table' });
  for (const r of b.rows) {
    const extent = barExtent(r.value, b.domain, 100);
    const bar = h('div', { class: r.value < 0 ? 'wb-cell-bar wb-negative' : 'wb-cell-bar' });
    bar.style.left = `${extent.x}%`;
    bar.style.width = `${Math.max(extent.width, 0.3)}%`;
    if (b.cmap) {
      bar.style.background = tokenColours(r.value, b.scale, b.cmap).background;
    }
    const zero = h('div', { class: 'wb-cell-zero' });
    zero.style.left = `${extent.zero}%`;
    const tr = h(
      'tr',
      {},
      h('th', { text: r.label, title: r.label }),
      h('td', { class: 'wb-num', text: formatValue(r.value) }),
      h('td', { class: 'wb-cell' }, h('div', { class: 'wb-cell-track' }, zero, bar))
    );
    tr.addEventListener('mouseenter', () => {
      readout.textContent = `${r.label}: ${formatValue(r.value)}`;
    });
    table.append(tr);
  }
  root.append(table);
  return root;
}

function drawTokens(b) {
  const { root, readout } = block('tokens', b.caption);
  const box = h('div', { class: 'wb-token-box' });
  for (const t of b.tokens) {
    const span = h('span', { class: t.pad ? 'wb-token wb-pad' : 'wb-token', text: t.text || '\u2423' });
    if (t.score !== undefined && t.score !== null) {
      const c = tokenColours(t.score, b.scale);
      span.style.background = c.background;
      span.style.color = c.color;
      span.append(h('small', { class: 'wb-token-value', text: formatValue(t.score) }));
      span.title = `${t.text}: ${formatValue(t.score)}`;
      span.addEventListener('mouseenter', () => {
        readout.textContent = `${t.text}: ${formatValue(t.score)}`;
      });
    }
    box.append(span);
  }
  root.append(box);
  if (b.scale !== undefined && b.scale !== null) {
    root.append(colourBar('RdBu_r', -b.scale, b.scale, 'blue: against the target · red: for it'));
  }
  return root;
}

function drawOverlay(b, arrays, model) {
  const { root, readout } = block('overlay', b.caption);
  const heat = arrays(b.heat);
  const [hh, hw] = b.heat.shape;
  const image = b.image ? arrays(b.image) : null;
  const rgb = b.image ? b.image.shape.length === 3 : false;
  const pair = h('div', { class: 'wb-panels wb-pair' });
  pair.style.gridTemplateColumns = 'repeat(2, minmax(0, 1fr))';
  pair.style.maxWidth = `${2 * 300 * Math.min(1, hw / hh) + 6}px`;
  const input = h('canvas', { class: 'wb-pixels wb-input' });
  const over = h('canvas', { class: 'wb-pixels wb-over' });
  for (const c of [input, over]) {
    c.style.aspectRatio = `${hw} / ${hh}`;
  }
  if (image) {
    putPixels(input, rgb ? rgbPixels(image, hh, hw) : panelPixels(image, 0, hh, hw, 1, 0, 'gray'), hw, hh);
  }
  const slider = h('input', { type: 'range', min: '0', max: '1', step: '0.05', class: 'wb-alpha' });
  const sliderValue = h('span', { class: 'wb-alpha-value' });
  const redraw = alpha => {
    slider.value = String(alpha);
    slider.setAttribute('value', String(alpha)); // so an exported copy shows it too
    sliderValue.textContent = Number(alpha).toFixed(2);
    putPixels(over, overlayPixels(image, rgb, heat, hh, hw, b.scale, alpha), hw, hh);
    over.dataset.alpha = String(alpha);
  };
  redraw(model ? model.get('alpha') : b.alpha);
  slider.addEventListener('input', () => {
    redraw(Number(slider.value));
    if (model) {
      model.set('alpha', Number(slider.value));
      model.save_changes();
    }
  });
  hoverCanvas(over, readout, (fx, fy) =>
    pixelText('attribution', pixelAt({ array: b.heat, stride: 1 }, heat, fx, fy))
  );
  pair.append(
    image ? h('figure', { class: 'wb-panel' }, input, h('figcaption', { text: 'input' })) : null,
    h('figure', { class: 'wb-panel' }, over, h('figcaption', { text: 'attribution' }))
  );
  root.append(
    pair,
    h('label', { class: 'wb-alpha-label' }, h('span', { text: 'overlay opacity' }), slider, sliderValue),
    colourBar('RdBu_r', -b.scale, b.scale, 'blue: against the target · red: for it')
  );
  root.redrawAlpha = redraw;
  return root;
}

const DRAW = {
  grid: drawGrid,
  histogram: drawHistogram,
  bars: drawBars,
  table: drawTable,
  tokens: drawTokens,
  overlay: drawOverlay,
  text: b => h('pre', { class: 'wb-block wb-text', text: b.text }),
  scalar: b => h('div', { class: 'wb-block wb-scalar', text: formatValue(b.value) }),
  note: b => h('div', { class: 'wb-block wb-note', text: b.text })
};

/** The array keys a spec needs. */
export function neededKeys(spec) {
  const keys = [];
  const visit = v => {
    if (Array.isArray(v)) {
      v.forEach(visit);
    } else if (v && typeof v === 'object') {
      if (typeof v.key === 'string' && v.dtype && v.shape) {
        keys.push(v.key);
      } else {
        Object.values(v).forEach(visit);
      }
    }
  };
  visit(spec);
  return keys;
}

/**
 * Draw ``spec`` into ``el``: one column per example, each with one title, its summary and its views.
 * ``arrays(ref)`` returns the typed array of an array reference; ``model`` (optional) syncs the overlay
 * opacity with the kernel.
 */
export function drawSpec(el, spec, arrays, model) {
  const columns = h('div', { class: 'wb-columns' });
  for (const column of spec.columns || []) {
    const section = h('section', { class: 'wb-column' }, h('h3', { class: 'wb-title', text: column.title || '' }));
    if (column.summary && column.summary.length) {
      const summary = h('div', { class: 'wb-summary workbench-summary' });
      for (const [k, v] of column.summary) {
        summary.append(
          h('span', { class: 'wb-field' }, h('span', { class: 'wb-key', text: k }), h('span', { text: v }))
        );
      }
      section.append(summary);
    }
    if (column.message) {
      section.append(h('pre', { class: 'wb-message', text: column.message }));
    }
    for (const b of column.blocks || []) {
      const draw = DRAW[b.kind];
      section.append(draw ? draw(b, arrays, model) : h('div', { class: 'wb-note', text: `(no view for ${b.kind})` }));
    }
    columns.append(section);
  }
  el.replaceChildren(columns);
  return columns;
}

// --- export --------------------------------------------------------------------------------------

const THEME_VARIABLES = [
  '--jp-ui-font-color0',
  '--jp-ui-font-color1',
  '--jp-ui-font-color2',
  '--jp-layout-color0',
  '--jp-layout-color1',
  '--jp-layout-color2',
  '--jp-border-color1',
  '--jp-border-color2',
  '--jp-brand-color1',
  '--jp-warn-color0',
  '--jp-error-color1',
  '--jp-ui-font-family',
  '--jp-code-font-family'
];

/** The view (its columns) as a standalone SVG document: canvases as images, styles and theme inlined. */
export function viewSvg(columns) {
  const rect = columns.getBoundingClientRect();
  const width = Math.ceil(rect.width) || 800;
  const height = Math.ceil(rect.height) || 600;
  const clone = columns.cloneNode(true);
  const sources = columns.querySelectorAll('canvas');
  clone.querySelectorAll('canvas').forEach((c, i) => {
    const img = document.createElement('img');
    img.setAttribute('src', sources[i].toDataURL ? sources[i].toDataURL('image/png') : '');
    img.setAttribute('class', c.getAttribute('class') || '');
    img.setAttribute('style', c.getAttribute('style') || '');
    c.replaceWith(img);
  });
  const computed = getComputedStyle(columns);
  const variables = THEME_VARIABLES.map(v => `${v}:${computed.getPropertyValue(v) || 'initial'}`).join(';');
  const css = [...document.styleSheets]
    .flatMap(sheet => {
      try {
        return [...sheet.cssRules].map(r => r.cssText).filter(t => t.includes('.wb-'));
      } catch (e) {
        return [];
      }
    })
    .join('\n');
  const background = getComputedStyle(document.body).getPropertyValue('--jp-layout-color0') || '#fff';
  // Built as a DOM and serialized, so quotes in fonts or CSS are escaped as XML needs.
  const svg = document.createElementNS(SVG, 'svg');
  for (const [k, v] of [['width', width], ['height', height], ['viewBox', `0 0 ${width} ${height}`]]) {
    svg.setAttribute(k, String(v));
  }
  const object = document.createElementNS(SVG, 'foreignObject');
  for (const [k, v] of [['x', 0], ['y', 0], ['width', width], ['height', height]]) {
    object.setAttribute(k, String(v));
  }
  const page = document.createElementNS('http://www.w3.org/1999/xhtml', 'div');
  page.setAttribute('class', 'wb-inspector wb-export');
  page.setAttribute('style', `${variables};background:${background};width:${width}px`);
  const style = document.createElementNS('http://www.w3.org/1999/xhtml', 'style');
  style.textContent = css;
  page.append(style, clone);
  object.append(page);
  svg.append(object);
  return new XMLSerializer().serializeToString(svg);
}

/** The SVG drawn onto a canvas at twice the pixel density, as a PNG blob. */
export function svgToPng(svg, width, height) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => {
      const canvas = document.createElement('canvas');
      canvas.width = 2 * width;
      canvas.height = 2 * height;
      const ctx = canvas.getContext('2d');
      ctx.scale(2, 2);
      ctx.drawImage(img, 0, 0);
      try {
        canvas.toBlob(blob => (blob ? resolve(blob) : reject(new Error('the browser made no PNG'))), 'image/png');
      } catch (e) {
        reject(e);
      }
    };
    img.onerror = () => reject(new Error('the browser could not draw the view as an image'));
    img.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(svg);
  });
}

function download(blob, name) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// --- the widget ----------------------------------------------------------------------------------

/** Arrays received, by content key (shared by every view on the page); the oldest go past the limit. */
const CACHE = new Map();
let cacheBytes = 0;
const CACHE_LIMIT = 64 * 1024 * 1024;

/** Keep arrays sent by the kernel: ``content.arrays`` lists ``{key, dtype, shape}`` per buffer. */
export function storeArrays(content, buffers) {
  (content.arrays || []).forEach((ref, i) => {
    if (CACHE.has(ref.key)) {
      return;
    }
    const view = buffers[i];
    const bytes = view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength);
    const data =
      ref.dtype === 'float32'
        ? new Float32Array(bytes)
        : ref.dtype === 'float16'
          ? halfToFloat(new Uint16Array(bytes))
          : new Uint8Array(bytes);
    CACHE.set(ref.key, data);
    cacheBytes += data.byteLength;
  });
  for (const [key, data] of CACHE) {
    if (cacheBytes <= CACHE_LIMIT) {
      break;
    }
    CACHE.delete(key);
    cacheBytes -= data.byteLength;
  }
}

/** The keys of ``spec`` the page does not hold. */
export function missingKeys(spec) {
  return neededKeys(spec).filter(k => !CACHE.has(k));
}

function cached(ref) {
  const data = CACHE.get(ref.key);
  CACHE.delete(ref.key); // most recently used last
  CACHE.set(ref.key, data);
  return data;
}

const NAVIGATION = {
  ArrowLeft: ['example', -1],
  ArrowRight: ['example', 1],
  ArrowUp: ['step', -1],
  ArrowDown: ['step', 1]
};

function initialize({ model }) {
  model.on('msg:custom', (content, buffers) => {
    if (content && content.type === 'arrays') {
      storeArrays(content, buffers);
    }
  });
}

function render({ model, el }) {
  const root = h('div', { class: 'wb-inspector', tabindex: '0' });
  const body = h('div', { class: 'wb-body' });
  const status = h('span', { class: 'wb-status' });
  const exportPng = h('button', { class: 'wb-button wb-export-png', type: 'button', text: 'PNG' });
  const exportSvg = h('button', { class: 'wb-button wb-export-svg', type: 'button', text: 'SVG' });
  const hint = h('span', { class: 'wb-hint' });
  const bar = h('div', { class: 'wb-toolbar' }, hint, status, h('span', { class: 'wb-export-label', text: 'export' }), exportPng, exportSvg);
  root.append(bar, body);
  el.append(root);
  let columns = null;
  let asked = '';

  const draw = () => {
    const spec = model.get('spec') || {};
    hint.textContent = spec.navigation ? '← → example · ↑ ↓ step (click the view first)' : '';
    bar.style.display = spec.columns && spec.columns.length ? '' : 'none';
    const missing = missingKeys(spec);
    if (missing.length) {
      const wanted = missing.join(',');
      if (wanted !== asked) {
        asked = wanted;
        model.send({ type: 'want', keys: missing });
      }
      status.textContent = 'loading…';
      return;
    }
    asked = '';
    status.textContent = '';
    const started = performance.now();
    columns = drawSpec(body, spec, cached, model);
    root.dataset.drawn = String(spec.serial === undefined ? '' : spec.serial);
    root.dataset.drawMs = (performance.now() - started).toFixed(2);
  };
  const onMessage = content => {
    if (content && content.type === 'arrays') {
      draw();
    }
  };
  const onAlpha = () => {
    for (const o of body.querySelectorAll('.wb-overlay')) {
      if (o.redrawAlpha) {
        o.redrawAlpha(model.get('alpha'));
      }
    }
  };
  model.on('change:spec', draw);
  model.on('change:alpha', onAlpha);
  model.on('msg:custom', onMessage);
  root.addEventListener('keydown', event => {
    const move = NAVIGATION[event.key];
    const spec = model.get('spec') || {};
    if (move && spec.navigation && !(event.target instanceof HTMLInputElement)) {
      event.preventDefault();
      model.send({ type: 'navigate', what: move[0], delta: move[1] });
    }
  });
  const exporter = (kind, make) => async () => {
    if (!columns) {
      return;
    }
    const name = `${(model.get('spec') || {}).name || 'inspector'}.${kind}`;
    try {
      const svg = viewSvg(columns);
      const r = columns.getBoundingClientRect();
      download(await make(svg, Math.ceil(r.width), Math.ceil(r.height)), name);
      status.textContent = `saved ${name}`;
    } catch (e) {
      status.textContent = `export failed: ${e.message}`;
    }
  };
  exportSvg.addEventListener(
    'click',
    exporter('svg', svg => new Blob([svg], { type: 'image/svg+xml' }))
  );
  exportPng.addEventListener('click', exporter('png', svgToPng));
  draw();
  return () => {
    model.off('change:spec', draw);
    model.off('change:alpha', onAlpha);
    model.off('msg:custom', onMessage);
  };
}

export default { initialize, render };
