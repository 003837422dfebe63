/**
 * The inspector's front end (workbench/inspector/static/inspector.js): colour mapping, hover values,
 * chart geometry, the DOM it draws from a view description, and its messages to the kernel.
 */
import widget, {
  barExtent,
  colourAt,
  drawSpec,
  formatValue,
  gridShape,
  halfToFloat,
  histogramBars,
  missingKeys,
  neededKeys,
  overlayPixels,
  panelPixels,
  pixelAt,
  pixelText,
  storeArrays,
  tokenColours
} from '../../workbench/inspector/static/inspector.js';

const ref = (key, shape, dtype = 'float32') => ({ key, dtype, shape });

function fakeModel(spec) {
  const handlers = {};
  const sent = [];
  const state = { spec, alpha: 0.6 };
  return {
    sent,
    get: k => state[k],
    set: (k, v) => {
      state[k] = v;
    },
    save_changes: () => {},
    send: m => sent.push(m),
    on: (event, f) => {
      (handlers[event] = handlers[event] || []).push(f);
    },
    off: () => {},
    emit: (event, ...args) => (handlers[event] || []).forEach(f => f(...args)),
    change: (k, v) => {
      state[k] = v;
      (handlers[`change:${k}`] || []).forEach(f => f());
    }
  };
}

function dataView(values) {
  const a = Float32Array.from(values);
  return new DataView(a.buffer);
}

describe('numbers and colours', () => {
  it('writes numbers as the kernel does', () => {
    expect(formatValue(0)).toBe('0');
    expect(formatValue(0.123456)).toBe('0.1235');
    expect(formatValue(63)).toBe('63');
    expect(formatValue(1e-5)).toBe('1.000e-05');
    expect(formatValue(123456)).toBe('1.235e+05');
    expect(formatValue(NaN)).toBe('NaN');
    expect(formatValue(-Infinity)).toBe('-Inf');
    expect(formatValue(null)).toBe('—');
  });

  it('maps values onto matplotlib colour maps, NaN red, a reversed range reversing the map', () => {
    expect(colourAt('viridis', 0)).toBe('rgb(68, 1, 84)');
    expect(colourAt('viridis', 1)).toBe('rgb(253, 231, 37)');
    const px = panelPixels(
      Float32Array.from([0, 10, NaN, Infinity]),
      0,
      2,
      2,
      0,
      10,
      'gray'
    );
    expect(Array.from(px.slice(0, 4))).toEqual([0, 0, 0, 255]);
    expect(Array.from(px.slice(4, 8))).toEqual([255, 255, 255, 255]);
    expect(Array.from(px.slice(8, 12))).toEqual([214, 39, 40, 255]);
    expect(Array.from(px.slice(12, 16))).toEqual([255, 255, 255, 255]);
    const reversed = panelPixels(
      Float32Array.from([0]),
      0,
      1,
      1,
      10,
      0,
      'gray'
    );
    expect(Array.from(reversed.slice(0, 3))).toEqual([255, 255, 255]);
    const flat = panelPixels(
      Float32Array.from([3, 3]),
      0,
      1,
      2,
      3,
      3,
      'viridis'
    );
    expect(Array.from(flat.slice(0, 3))).toEqual([68, 1, 84]); // a dead channel draws dark, no division by 0
  });

  it('blends the attribution overlay by its opacity', () => {
    const heat = Float32Array.from([1, -1]);
    const grey = Float32Array.from([0, 0]); // white under gray_r
    const none = overlayPixels(grey, false, heat, 1, 2, 1, 0);
    expect(Array.from(none.slice(0, 3))).toEqual([255, 255, 255]);
    const full = overlayPixels(grey, false, heat, 1, 2, 1, 1);
    expect(Array.from(full.slice(0, 3))).toEqual([103, 0, 31]); // RdBu_r's red end
    expect(Array.from(full.slice(4, 7))).toEqual([5, 48, 97]); // its blue end
  });

  it('reads half floats', () => {
    // 1, -2, 0.5, 65504 (the largest), the smallest subnormal, Inf, NaN
    const bits = Uint16Array.from([
      0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x7c00, 0x7e00
    ]);
    const f = Array.from(halfToFloat(bits));
    expect(f.slice(0, 6)).toEqual([1, -2, 0.5, 65504, 2 ** -24, Infinity]);
    expect(Number.isNaN(f[6])).toBe(true);
  });

  it('gives strong token colours white text', () => {
    expect(tokenColours(1, 1).color).toBe('#fff');
    expect(tokenColours(0, 1).color).toBe('#000');
    expect(tokenColours(0.5, 0).background).toBe(colourAt('RdBu_r', 0.5)); // all-zero scale: neutral
  });
});

describe('geometry and hover', () => {
  it('lays panels out near-square', () => {
    expect(gridShape(16)).toEqual({ rows: 4, cols: 4 });
    expect(gridShape(5)).toEqual({ rows: 2, cols: 3 });
    expect(gridShape(1)).toEqual({ rows: 1, cols: 1 });
  });

  it('finds the pixel under the pointer, in the original coordinates of a downsampled panel', () => {
    const values = Float32Array.from({ length: 12 }, (_, i) => i);
    const hit = pixelAt(
      { array: ref('k', [3, 4]), stride: 2 },
      values,
      0.6,
      0.5
    );
    expect(hit).toEqual({ row: 2, col: 4, value: 6 });
    expect(pixelText('ch 1', hit)).toBe('ch 1 · (row 2, col 4) = 6');
    const rgb = pixelAt(
      { array: ref('r', [1, 1, 3], 'uint8') },
      Uint8Array.from([255, 0, 51]),
      0,
      0
    );
    expect(pixelText('', rgb)).toBe('(row 0, col 0) = rgb(1, 0, 0.2)');
  });

  it('sizes histogram bars by count and bars from zero', () => {
    const bars = histogramBars([1, 4, 0], [0, 1, 2, 3], 30, 100);
    expect(bars.map(b => b.height)).toEqual([25, 100, 0]);
    expect(bars[1]).toMatchObject({ x: 10, lo: 1, hi: 2, count: 4 });
    expect(barExtent(-1, [-1, 3], 100)).toEqual({ x: 0, width: 25, zero: 25 });
    expect(barExtent(3, [-1, 3], 100)).toEqual({ x: 25, width: 75, zero: 25 });
  });
});

describe('drawing a view', () => {
  const spec = {
    columns: [
      {
        title: 'example 0 · [1] conv',
        summary: [
          ['shape', '2x2x2'],
          ['max', '7']
        ],
        blocks: [
          {
            kind: 'grid',
            caption: 'showing 2 of 2 channels',
            cmap: 'viridis',
            rgb: false,
            shared: false,
            panels: [
              {
                title: 'ch 0',
                lo: 0,
                hi: 3,
                stride: 1,
                array: ref('a0', [2, 2])
              },
              {
                title: 'ch 1',
                lo: 4,
                hi: 7,
                stride: 1,
                array: ref('a1', [2, 2])
              }
            ]
          },
          {
            kind: 'histogram',
            caption: 'histogram',
            counts: [2, 6],
            edges: [0, 3.5, 7]
          }
        ]
      },
      {
        title: 'example 1 · [1] conv',
        blocks: [
          {
            kind: 'bars',
            caption: 'top 2 of 3',
            domain: [0, 0.7],
            rows: [
              { label: '1: cat', value: 0.7 },
              { label: '0: dog', value: 0.2 }
            ]
          },
          {
            kind: 'table',
            caption: 'features (2)',
            domain: [-1, 2],
            rows: [
              { label: 'alcohol', value: 2 },
              { label: 'ash', value: -1 }
            ]
          },
          {
            kind: 'tokens',
            caption: '2 tokens',
            scale: 1,
            tokens: [
              { text: 'good', pad: false, score: 0.9 },
              { text: '<pad>', pad: true }
            ]
          }
        ]
      }
    ]
  };

  beforeAll(() => {
    storeArrays(
      { type: 'arrays', arrays: [ref('a0', [2, 2]), ref('a1', [2, 2])] },
      [dataView([0, 1, 2, 3]), dataView([4, 5, 6, 7])]
    );
  });

  it('lists the arrays a view needs and which the page lacks', () => {
    expect(neededKeys(spec)).toEqual(['a0', 'a1']);
    expect(missingKeys(spec)).toEqual([]);
    expect(
      missingKeys({
        columns: [
          { blocks: [{ kind: 'grid', panels: [{ array: ref('zz', [1, 1]) }] }] }
        ]
      })
    ).toEqual(['zz']);
  });

  it('draws one title per example, the summary, captions, labels and values', () => {
    const el = document.createElement('div');
    const arrays = r =>
      r.key === 'a0'
        ? Float32Array.from([0, 1, 2, 3])
        : Float32Array.from([4, 5, 6, 7]);
    drawSpec(el, spec, arrays);
    expect(
      [...el.querySelectorAll('.wb-title')].map(e => e.textContent)
    ).toEqual(['example 0 · [1] conv', 'example 1 · [1] conv']);
    expect(el.querySelector('.wb-summary').textContent).toBe('shape2x2x2max7');
    expect(
      [...el.querySelectorAll('figcaption')].map(e => e.textContent)
    ).toEqual(['ch 0 [0, 3]', 'ch 1 [4, 7]']);
    expect(el.querySelectorAll('canvas.wb-pixels')).toHaveLength(2);
    expect(el.querySelector('.wb-colourbar-lo').textContent).toBe('panel min');
    expect(
      [...el.querySelectorAll('.wb-bars text.wb-label')].map(e => e.textContent)
    ).toEqual(['1: cat', '0: dog']);
    expect(
      [...el.querySelectorAll('.wb-bars text.wb-value')].map(e => e.textContent)
    ).toEqual(['0.7', '0.2']);
    expect(
      [...el.querySelectorAll('.wb-table th')].map(e => e.textContent)
    ).toEqual(['alcohol', 'ash']);
    const negative = el.querySelectorAll('.wb-cell-bar')[1];
    expect(negative.classList.contains('wb-negative')).toBe(true);
    expect([negative.style.left, negative.style.width]).toEqual([
      '0%',
      '33.33333333333333%'
    ]);
    const tokens = el.querySelectorAll('.wb-token');
    expect(tokens[1].classList.contains('wb-pad')).toBe(true);
    expect(tokens[0].style.color).toBe('rgb(255, 255, 255)');
  });

  it('shows the hovered bar, bin, row and token in the readout', () => {
    const el = document.createElement('div');
    drawSpec(el, spec, () => Float32Array.from([0, 1, 2, 3]));
    const readout = kind =>
      el.querySelector(`.wb-${kind} .wb-readout`).textContent;
    el.querySelector('.wb-bars .wb-bar-row').dispatchEvent(
      new MouseEvent('mouseenter')
    );
    expect(readout('bars')).toBe('1: cat: 0.7');
    el.querySelectorAll('.wb-histogram rect.wb-hit')[1].dispatchEvent(
      new MouseEvent('mouseenter')
    );
    expect(readout('histogram')).toBe('[3.5, 7): 6');
    el.querySelectorAll('.wb-table tr')[1].dispatchEvent(
      new MouseEvent('mouseenter')
    );
    expect(readout('table')).toBe('ash: -1');
    el.querySelector('.wb-token').dispatchEvent(new MouseEvent('mouseenter'));
    expect(readout('tokens')).toBe('good: 0.9');
  });
});

describe('the widget', () => {
  it('asks the kernel for arrays it lacks, draws when they come, and sends arrow keys', () => {
    const spec = {
      navigation: true,
      columns: [
        {
          title: 'example 3',
          blocks: [
            {
              kind: 'grid',
              cmap: 'gray',
              rgb: false,
              panels: [{ title: '', lo: 0, hi: 1, array: ref('fresh', [1, 2]) }]
            }
          ]
        }
      ]
    };
    const model = fakeModel(spec);
    const el = document.createElement('div');
    widget.initialize({ model });
    widget.render({ model, el });
    expect(model.sent).toEqual([{ type: 'want', keys: ['fresh'] }]);
    expect(el.querySelector('.wb-title')).toBeNull();
    model.emit(
      'msg:custom',
      { type: 'arrays', arrays: [ref('fresh', [1, 2])] },
      [dataView([0, 1])]
    );
    expect(el.querySelector('.wb-title').textContent).toBe('example 3');
    model.change('spec', { ...spec, serial: 2 }); // the same arrays again: nothing asked, drawn at once
    expect(model.sent).toHaveLength(1);
    expect(el.querySelector('.wb-inspector').dataset.drawn).toBe('2');
    el.querySelector('.wb-inspector').dispatchEvent(
      new KeyboardEvent('keydown', { key: 'ArrowRight', bubbles: true })
    );
    el.querySelector('.wb-inspector').dispatchEvent(
      new KeyboardEvent('keydown', { key: 'ArrowUp', bubbles: true })
    );
    expect(model.sent.slice(1)).toEqual([
      { type: 'navigate', what: 'example', delta: 1 },
      { type: 'navigate', what: 'step', delta: -1 }
    ]);
  });

  it('redraws the overlay when its opacity changes, without asking the kernel', () => {
    const spec = {
      columns: [
        {
          title: 'attribution',
          blocks: [
            {
              kind: 'overlay',
              image: null,
              heat: ref('heat', [1, 2]),
              scale: 1,
              alpha: 0.6
            }
          ]
        }
      ]
    };
    storeArrays({ type: 'arrays', arrays: [ref('heat', [1, 2])] }, [
      dataView([1, -1])
    ]);
    const model = fakeModel(spec);
    const el = document.createElement('div');
    widget.render({ model, el });
    const slider = el.querySelector('input.wb-alpha');
    slider.value = '0.25';
    slider.dispatchEvent(new Event('input'));
    expect(el.querySelector('canvas.wb-over').dataset.alpha).toBe('0.25');
    expect(model.get('alpha')).toBe(0.25);
    expect(model.sent).toEqual([]);
  });
});
