import { PipelineTree } from '../src/diagram';

/** A node as `workbench.display.describe` writes it. */
export function node(
  kind: PipelineTree['kind'],
  label: string,
  extra: Partial<PipelineTree> = {}
): PipelineTree {
  return {
    kind,
    label,
    name: null,
    type: 'FunctionTransform',
    stage: 'preprocess',
    params: 0,
    children: [],
    ...extra
  };
}

/**
 * `to_tensor >> (flip + identity) >> batch >> Linear >> unbatch >> argmax`, the shape
 * `describe` gives for it.
 */
export function classifier(): PipelineTree {
  return node('compose', 'compose', {
    type: 'Compose',
    params: 15,
    symbol: '>>',
    layout: 'column',
    branches: [],
    children: [
      node('step', 'to_tensor', { name: 'to_tensor' }),
      node('rollout', 'rollout', {
        type: 'Rollout',
        symbol: '+',
        layout: 'row',
        branches: ['[0]', '[1]'],
        children: [
          node('step', 'flip'),
          node('step', 'identity', { type: 'Identity' })
        ]
      }),
      node('batch', 'batch', { type: 'Batch' }),
      node('step', 'Linear(in_features=4, out_features=3, bias=True)', {
        type: 'Linear',
        stage: 'forward',
        params: 15
      }),
      node('unbatch', 'unbatch', { type: 'Unbatch', stage: 'forward' }),
      node('step', 'argmax', { stage: 'postprocess', name: 'argmax' })
    ]
  });
}
