import { buildDiagram } from '../src/diagram';
import { drawDiagram } from '../src/render';
import { classifier } from './fixtures';

describe('drawDiagram', () => {
  const host = (): HTMLElement =>
    drawDiagram(buildDiagram(classifier()), document);

  it('draws every step with its stage colour and hover text', () => {
    const el = host();
    const leaves = [...el.querySelectorAll<HTMLElement>('.wb-leaf')];
    expect(
      leaves.map(l => l.querySelector('.wb-node-label')!.textContent)
    ).toEqual([
      'to_tensor',
      'flip',
      'identity',
      'Linear(in_features=4, out_features=3, bias=True)',
      'argmax'
    ]);
    expect(
      leaves.map(l => [...l.classList].find(c => c.startsWith('wb-stage-')))
    ).toEqual([
      'wb-stage-preprocess',
      'wb-stage-preprocess',
      'wb-stage-preprocess',
      'wb-stage-forward',
      'wb-stage-postprocess'
    ]);
    expect(leaves[3].title).toContain('parameters: 15');
  });

  it('draws rollout branches side by side and batch/unbatch as rules', () => {
    const el = host();
    const row = el.querySelector('[data-path="[1]"] > .wb-group-body')!;
    expect(row.classList.contains('wb-row')).toBe(true);
    expect(row.querySelectorAll(':scope > .wb-branch')).toHaveLength(2);
    expect(
      [...el.querySelectorAll('.wb-rule')].map(r => r.textContent)
    ).toEqual(['batch', 'unbatch']);
  });

  it('names a batch variant on its rule as the core labels it', () => {
    const root = classifier();
    root.children[2].label = 'batch.pad(0)';
    const el = drawDiagram(buildDiagram(root), document);
    expect(el.querySelector('.wb-rule-batch')!.textContent).toBe(
      'batch.pad(0)'
    );
    expect(el.querySelector<HTMLElement>('.wb-rule-batch')!.title).toMatch(
      /^batch\.pad\(0\): items are collated/
    );
  });

  it('collapses and expands a composite on click and from the keyboard', () => {
    const el = host();
    const group = el.querySelector<HTMLElement>('[data-path="[1]"]')!;
    const header = group.querySelector<HTMLElement>(
      ':scope > .wb-group-header'
    )!;
    header.click();
    expect(group.classList.contains('wb-collapsed')).toBe(true);
    expect(header.getAttribute('aria-expanded')).toBe('false');
    // Collapsing the inner group leaves the outer one open.
    expect(
      el.querySelector('[data-path=""]')!.classList.contains('wb-collapsed')
    ).toBe(false);
    header.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter' }));
    expect(group.classList.contains('wb-collapsed')).toBe(false);
  });

  it('summarises steps and parameters with a stage legend', () => {
    const el = host();
    expect(el.querySelector('.wb-diagram-facts')!.textContent).toBe(
      '5 steps · 15 params'
    );
    expect(
      [...el.querySelectorAll('.wb-stage-chip')].map(c => c.textContent)
    ).toEqual(['preprocess 3', 'forward 1', 'postprocess 1']);
  });
});
