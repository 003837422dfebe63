import { PipelinesPanel, drawDetails } from '../src/panel';
import { PipelineInfo } from '../src/protocol';
import { classifier } from './fixtures';

function info(name: string): PipelineInfo {
  return {
    name,
    root: classifier(),
    steps: 5,
    params: 15,
    device: 'cuda:0',
    stale: [],
    exportPath: `${name}-export.wb`,
    stages: {
      preprocess: ['to_tensor', 'flip', 'identity'],
      forward: ['Linear'],
      postprocess: ['argmax']
    }
  };
}

describe('PipelinesPanel', () => {
  const calls: string[] = [];
  const panel = new PipelinesPanel({
    inspect: n => calls.push(`inspect ${n}`),
    source: n => calls.push(`source ${n}`),
    exportBundle: (n, path) => calls.push(`export ${n} ${path}`),
    refresh: () => calls.push('refresh')
  });

  it('says what to do when there is nothing to list', () => {
    panel.setState({ kind: 'no-notebook' });
    expect(panel.node.querySelector('.wb-panel-status')!.textContent).toBe(
      'Open a notebook to see its pipelines.'
    );
    panel.setState({ kind: 'not-loaded', notebook: 'a.ipynb' });
    expect(panel.node.textContent).toContain('Run "import workbench"');
    panel.setState({ kind: 'ready', notebook: 'a.ipynb', pipelines: [] });
    expect(panel.node.textContent).toContain('no pipelines yet');
  });

  it('lists pipelines with their facts and wires the actions', () => {
    panel.setState({
      kind: 'ready',
      notebook: 'a.ipynb',
      pipelines: [info('clf'), info('enc')]
    });
    const items = [...panel.node.querySelectorAll<HTMLElement>('.wb-pipeline')];
    expect(items.map(i => i.dataset.name)).toEqual(['clf', 'enc']);
    expect(items[0].querySelector('.wb-pipeline-facts')!.textContent).toBe(
      '5 steps · 15 params · cuda:0'
    );
    items[1].querySelector<HTMLButtonElement>('.wb-action-inspect')!.click();
    items[0].querySelector<HTMLButtonElement>('.wb-action-source')!.click();
    items[0].querySelector<HTMLButtonElement>('.wb-action-export')!.click();
    panel.node.querySelector<HTMLButtonElement>('.wb-refresh')!.click();
    expect(calls).toEqual([
      'inspect enc',
      'source clf',
      'export clf clf-export.wb',
      'refresh'
    ]);
  });

  it('expands a pipeline to its stages and steps, and keeps it expanded across updates', () => {
    panel.node
      .querySelector<HTMLElement>(
        '.wb-pipeline[data-name="clf"] .wb-pipeline-head'
      )!
      .click();
    expect(panel.node.querySelectorAll('.wb-pipeline-details')).toHaveLength(1);
    panel.setState({
      kind: 'ready',
      notebook: 'a.ipynb',
      pipelines: [info('clf'), info('enc')]
    });
    const details = panel.node.querySelector(
      '.wb-pipeline[data-name="clf"] .wb-pipeline-details'
    );
    expect(details).not.toBeNull();
  });
});

describe('drawDetails', () => {
  it('shows each stage and the step tree with positions and markers', () => {
    const el = drawDetails(info('clf'), document);
    const stages = [...el.querySelectorAll<HTMLElement>('.wb-stage-row')].map(
      r =>
        `${r.dataset.stage}: ${r.querySelector('.wb-stage-steps')!.textContent}`
    );
    expect(stages).toEqual([
      'preprocess: to_tensor, flip, identity',
      'forward: Linear',
      'postprocess: argmax'
    ]);
    const top = [
      ...el.querySelectorAll('.wb-step-tree > li > .wb-step-label')
    ].map(l => l.textContent);
    expect(top).toEqual([
      '[0] to_tensor',
      '[1] + rollout',
      '── batch ──',
      '[3] Linear(in_features=4, out_features=3, bias=True)',
      '── unbatch ──',
      '[5] argmax'
    ]);
    expect(
      el.querySelectorAll('.wb-step-tree > li:nth-child(2) > ul > li')
    ).toHaveLength(2);
  });
});
