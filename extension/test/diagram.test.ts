import {
  PipelineDataError,
  buildDiagram,
  formatParams,
  layoutOf,
  tooltipOf,
  validateBundle,
  walk
} from '../src/diagram';
import { classifier, node } from './fixtures';

describe('validateBundle', () => {
  it('accepts a version-1 bundle', () => {
    const bundle = { version: 1, root: classifier() };
    expect(validateBundle(bundle).root.children).toHaveLength(6);
  });

  it('rejects another version, saying which', () => {
    expect(() => validateBundle({ version: 2, root: classifier() })).toThrow(
      /unsupported version 2/
    );
  });

  it('names the malformed node by its step path', () => {
    const root = classifier();
    (root.children[1].children[0] as any).stage = 'training';
    expect(() => validateBundle({ version: 1, root })).toThrow(
      PipelineDataError
    );
    expect(() => validateBundle({ version: 1, root })).toThrow(
      'pipeline node [1][0]: unknown stage "training"'
    );
  });

  it('rejects a composite it cannot draw, naming kind and layout', () => {
    const unknown = node('retry', 'retry', { children: [node('step', 'f')] });
    expect(() => validateBundle({ version: 1, root: unknown })).toThrow(
      'pipeline node (root): unknown kind "retry" without a "layout"'
    );
    const spiral: any = { ...unknown, layout: 'spiral' };
    expect(() => validateBundle({ version: 1, root: spiral })).toThrow(
      /unknown layout "spiral" of kind "retry"/
    );
  });

  it('rejects non-objects and missing children', () => {
    expect(() => validateBundle(null)).toThrow(/expected an object, got null/);
    const root: any = classifier();
    delete root.children[0].children;
    expect(() => validateBundle({ version: 1, root })).toThrow(
      'pipeline node [0]: "children" must be a list'
    );
  });
});

describe('buildDiagram', () => {
  const diagram = buildDiagram(classifier());

  it('lays compositions out as columns, branches as rows and markers as rules', () => {
    expect(diagram.root.layout).toBe('column');
    expect(diagram.root.children.map(c => c.layout)).toEqual([
      'leaf',
      'row',
      'rule',
      'leaf',
      'rule',
      'leaf'
    ]);
    expect(
      layoutOf(node('map', 'map', { children: [node('step', 'f')] }))
    ).toBe('column');
    expect(
      layoutOf(node('parallel', 'parallel', { children: [node('step', 'f')] }))
    ).toBe('row');
  });

  it('gives every node the step path the core uses in its errors', () => {
    expect([...walk(diagram.root)].map(n => n.path)).toEqual([
      '',
      '[0]',
      '[1]',
      '[1][0]',
      '[1][1]',
      '[2]',
      '[3]',
      '[4]',
      '[5]'
    ]);
  });

  it('counts steps per stage, not markers or composites', () => {
    expect(diagram.stepCounts).toEqual({
      preprocess: 3,
      forward: 1,
      postprocess: 1
    });
    expect(diagram.hasBatch).toBe(true);
    expect(diagram.hasUnbatch).toBe(true);
    expect(diagram.totalParams).toBe(15);
  });

  it('labels branches of rollouts by index and of if/try by role', () => {
    expect(diagram.root.children[1].branchLabels).toEqual(['[0]', '[1]']);
    expect(diagram.root.children[1].symbol).toBe('+');
    const ifNode = buildDiagram(
      node('if', 'IfTrain', {
        mode: 'train',
        symbol: 'if',
        layout: 'row',
        branches: ['then', 'else'],
        children: [node('step', 'augment'), node('step', 'identity')]
      })
    ).root;
    expect(ifNode.branchLabels).toEqual(['then', 'else']);
    expect(ifNode.tooltip).toContain('mode: train');
  });

  it('draws a composite it has never heard of from what the node says about itself', () => {
    const retry = node('retry', 'retry', {
      type: 'Retry',
      symbol: '↻',
      layout: 'row',
      branches: ['first', 'again'],
      children: [node('step', 'fetch'), node('step', 'fetch_slowly')]
    });
    const drawn = buildDiagram(
      validateBundle({ version: 1, root: retry }).root
    ).root;
    expect([drawn.layout, drawn.symbol, drawn.branchLabels]).toEqual([
      'row',
      '↻',
      ['first', 'again']
    ]);
    expect(drawn.tooltip).toContain('retry: 2 branches');
  });

  it('still draws nodes saved before they carried their shape', () => {
    const saved = node('compose', 'compose', {
      children: [
        node('step', 'f'),
        node('try', 'Try', {
          children: ['t', 'c', 'e', 'f'].map(l => node('step', l))
        }),
        node('map', 'map', { children: [node('step', 'g')] })
      ]
    });
    const drawn = buildDiagram(
      validateBundle({ version: 1, root: saved }).root
    ).root;
    expect([drawn.layout, drawn.symbol]).toEqual(['column', '>>']);
    const [, tryNode, mapNode] = drawn.children;
    expect([tryNode.layout, tryNode.symbol, tryNode.branchLabels]).toEqual([
      'row',
      'try',
      ['try', 'except', 'else', 'finally']
    ]);
    expect([mapNode.layout, mapNode.symbol, mapNode.branchLabels]).toEqual([
      'column',
      '~',
      []
    ]);
  });

  it('makes only composites collapsible', () => {
    const collapsible = [...walk(diagram.root)]
      .filter(n => n.collapsible)
      .map(n => n.path);
    expect(collapsible).toEqual(['', '[1]']);
  });
});

describe('tooltips and numbers', () => {
  it('shows type, stage, parameters and position on hover', () => {
    const linear = classifier().children[3];
    expect(tooltipOf(linear, '[3]')).toBe(
      'Linear: Linear(in_features=4, out_features=3, bias=True)\nstage: forward\nparameters: 15\nstep: [3]'
    );
    expect(tooltipOf(classifier().children[2], '[2]')).toMatch(
      /^batch: items are collated/
    );
    expect(tooltipOf(classifier(), '')).toContain('compose: 6 steps');
  });

  it('formats parameter counts compactly', () => {
    expect(formatParams(0)).toBe('0');
    expect(formatParams(9999)).toBe('9999');
    expect(formatParams(12345)).toBe('12.3k');
    expect(formatParams(1234567)).toBe('1.23M');
    expect(formatParams(2.5e9)).toBe('2.50B');
  });
});
