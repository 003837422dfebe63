/**
 * The diagram of what `workbench.display.describe` writes today (`described.json`, kept equal to
 * it by tests/test_composites.py): every composite, including one defined only in that test, is
 * drawn from what its node says, with no table of composites here.
 */
import { buildDiagram, validateBundle, walk } from '../src/diagram';
import { drawDiagram } from '../src/render';

declare function require(path: string): unknown;

const described = validateBundle(require('./described.json'));

describe('the diagram of a pipeline with every kind of composite', () => {
  const diagram = buildDiagram(described.root);
  const byPath = new Map([...walk(diagram.root)].map(n => [n.path, n]));

  it('draws each composite with the layout, symbol and branch labels its class declares', () => {
    const shapes = [...walk(diagram.root)]
      .filter(n => n.collapsible)
      .map(n => [n.path, n.kind, n.layout, n.symbol, n.branchLabels.join(',')]);
    expect(shapes).toEqual([
      ['', 'compose', 'column', '>>', ''],
      ['[1]', 'rollout', 'row', '+', '[0],[1]'],
      ['[1][0]', 'fallback', 'row', '??', 'first,otherwise'],
      ['[1][1]', 'try', 'row', 'try', 'try,except,else,finally'],
      ['[2]', 'if', 'row', 'if', 'then,else'],
      ['[4]', 'map', 'column', '~', '']
    ]);
    expect(byPath.get('[1][0]')!.tooltip).toContain('fallback: 2 branches');
  });

  it('labels the rule of batch.pad as the core does', () => {
    const el = drawDiagram(diagram, document);
    expect(
      [...el.querySelectorAll('.wb-rule')].map(r => r.textContent)
    ).toEqual(['batch.pad(0)', 'unbatch']);
    const labels = [
      ...el.querySelectorAll(
        '[data-path="[1][0]"] > .wb-group-body .wb-branch-label'
      )
    ];
    expect(labels.map(l => l.textContent)).toEqual(['first', 'otherwise']);
  });
});
