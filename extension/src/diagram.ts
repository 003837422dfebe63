/**
 * The pipeline diagram model: the JSON tree that `workbench.display.describe` produces, checked and
 * turned into nodes that say how each part is laid out (a column of steps, a row of branches, a
 * stage rule) and what hovering over it shows.
 *
 * Pure logic, no DOM: the renderer and the side panel both draw from it, and jest tests it.
 *
 *     const model = buildDiagram(validateBundle(data));
 *     model.root.layout === 'column';  // a `>>` composition draws its steps top to bottom
 */

export const MIME_TYPE = 'application/vnd.workbench.pipeline+json';
export const STAGES = ['preprocess', 'forward', 'postprocess'] as const;
export type Stage = (typeof STAGES)[number];
export const KINDS = [
  'compose',
  'rollout',
  'parallel',
  'map',
  'if',
  'try',
  'step',
  'batch',
  'unbatch'
] as const;
export type Kind = (typeof KINDS)[number];

/** One node of `describe(pipeline)`. */
export interface PipelineTree {
  kind: Kind;
  label: string;
  name: string | null;
  type: string;
  stage: Stage;
  params: number;
  children: PipelineTree[];
  mode?: string;
}

/** What the MIME bundle carries. */
export interface PipelineBundle {
  version: 1;
  root: PipelineTree;
}

export type Layout = 'leaf' | 'column' | 'row' | 'rule';

export interface DiagramNode {
  /** Position from the root, as the core names steps in errors: `[2][0]`; the root is `''`. */
  path: string;
  kind: Kind;
  label: string;
  name: string | null;
  type: string;
  stage: Stage;
  params: number;
  layout: Layout;
  /** The operator the composite stands for (`>>`, `+`, `/`, `~`, `if`, `try`), `''` for leaves. */
  symbol: string;
  /** Text shown on hover: type, stage, parameters, position. */
  tooltip: string;
  /** Labels over each branch of a row (`then`/`else`, `try`/`except`/...); empty when unlabelled. */
  branchLabels: string[];
  collapsible: boolean;
  children: DiagramNode[];
}

export interface Diagram {
  root: DiagramNode;
  /** Steps per stage, markers and composites not counted. */
  stepCounts: Record<Stage, number>;
  totalParams: number;
  hasBatch: boolean;
  hasUnbatch: boolean;
}

const SYMBOLS: Record<Kind, string> = {
  compose: '>>',
  rollout: '+',
  parallel: '/',
  map: '~',
  if: 'if',
  try: 'try',
  step: '',
  batch: '',
  unbatch: ''
};

const BRANCH_LABELS: Partial<Record<Kind, string[]>> = {
  if: ['then', 'else'],
  try: ['try', 'except', 'else', 'finally']
};

/** A malformed bundle; the message names the offending node by its path. */
export class PipelineDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PipelineDataError';
  }
}

/** Check `data` is a version-1 pipeline bundle and return it typed; throws `PipelineDataError` otherwise. */
export function validateBundle(data: unknown): PipelineBundle {
  if (!isObject(data)) {
    throw new PipelineDataError(`${MIME_TYPE}: expected an object, got ${describeValue(data)}`);
  }
  if (data.version !== 1) {
    throw new PipelineDataError(
      `${MIME_TYPE}: unsupported version ${JSON.stringify(data.version)} (this extension reads version 1); ` +
        'update the workbench JupyterLab extension'
    );
  }
  validateTree(data.root);
  return data as unknown as PipelineBundle;
}

/**
 * Check one `describe` tree (recursively). Errors name the node by its step path, after `context`:
 * `pipeline node [1][0]: unknown stage "training"`.
 */
export function validateTree(node: unknown, path = '', context = 'pipeline'): PipelineTree {
  const where = `${context} node ${path || '(root)'}`;
  if (!isObject(node)) {
    throw new PipelineDataError(`${where}: expected an object, got ${describeValue(node)}`);
  }
  if (!(KINDS as readonly string[]).includes(node.kind as string)) {
    throw new PipelineDataError(`${where}: unknown kind ${JSON.stringify(node.kind)}`);
  }
  if (typeof node.label !== 'string') {
    throw new PipelineDataError(`${where}: "label" must be a string`);
  }
  if (!(STAGES as readonly string[]).includes(node.stage as string)) {
    throw new PipelineDataError(`${where}: unknown stage ${JSON.stringify(node.stage)}`);
  }
  if (typeof node.params !== 'number' || !(node.params >= 0)) {
    throw new PipelineDataError(`${where}: "params" must be a non-negative number`);
  }
  if (!Array.isArray(node.children)) {
    throw new PipelineDataError(`${where}: "children" must be a list`);
  }
  node.children.forEach((child: unknown, i: number) => validateTree(child, `${path}[${i}]`, context));
  return node as unknown as PipelineTree;
}

/** Turn a checked tree into the diagram model. */
export function buildDiagram(root: PipelineTree): Diagram {
  const stepCounts: Record<Stage, number> = { preprocess: 0, forward: 0, postprocess: 0 };
  let hasBatch = false;
  let hasUnbatch = false;
  const visit = (node: PipelineTree, path: string): DiagramNode => {
    if (node.kind === 'batch') {
      hasBatch = true;
    } else if (node.kind === 'unbatch') {
      hasUnbatch = true;
    } else if (node.children.length === 0) {
      stepCounts[node.stage] += 1;
    }
    const children = node.children.map((c, i) => visit(c, `${path}[${i}]`));
    return {
      path,
      kind: node.kind,
      label: node.label,
      name: node.name ?? null,
      type: node.type ?? '',
      stage: node.stage,
      params: node.params,
      layout: layoutOf(node),
      symbol: SYMBOLS[node.kind],
      tooltip: tooltipOf(node, path),
      branchLabels: children.length > 1 || node.kind === 'if' || node.kind === 'try' ? branchLabelsOf(node) : [],
      collapsible: children.length > 0,
      children
    };
  };
  const diagramRoot = visit(root, '');
  return { root: diagramRoot, stepCounts, totalParams: root.params, hasBatch, hasUnbatch };
}

/** How a node is drawn: compositions top to bottom, branches side by side, markers as rules. */
export function layoutOf(node: PipelineTree): Layout {
  if (node.kind === 'batch' || node.kind === 'unbatch') {
    return 'rule';
  }
  if (node.children.length === 0) {
    return 'leaf';
  }
  return node.kind === 'compose' || node.kind === 'map' ? 'column' : 'row';
}

function branchLabelsOf(node: PipelineTree): string[] {
  const fixed = BRANCH_LABELS[node.kind];
  if (fixed) {
    return node.children.map((_, i) => fixed[i] ?? `[${i}]`);
  }
  if (node.kind === 'rollout' || node.kind === 'parallel') {
    return node.children.map((_, i) => `[${i}]`);
  }
  return [];
}

/** The hover text for a node: what it is, its stage, its parameters and where it sits. */
export function tooltipOf(node: PipelineTree, path: string): string {
  const lines: string[] = [];
  if (node.kind === 'batch' || node.kind === 'unbatch') {
    lines.push(
      node.kind === 'batch'
        ? 'batch: items are collated into batches here (preprocess → forward)'
        : 'unbatch: batches are split back into items here (forward → postprocess)'
    );
  } else {
    lines.push(node.name ? `${node.label} (${node.type})` : `${node.type || node.kind}: ${node.label}`);
    lines.push(`stage: ${node.stage}`);
    if (node.kind !== 'step') {
      const what = node.kind === 'compose' || node.kind === 'map' ? 'steps' : 'branches';
      lines.push(`${node.kind}: ${node.children.length} ${what}`);
    }
    if (node.mode) {
      lines.push(`mode: ${node.mode}`);
    }
    lines.push(`parameters: ${formatParams(node.params)}`);
  }
  lines.push(`step: ${path || '(whole pipeline)'}`);
  return lines.join('\n');
}

/** `1234567` → `1.23M`, `12345` → `12.3k`, small numbers as they are. */
export function formatParams(n: number): string {
  if (n >= 1e9) {
    return `${trim(n / 1e9)}B`;
  }
  if (n >= 1e6) {
    return `${trim(n / 1e6)}M`;
  }
  if (n >= 1e4) {
    return `${trim(n / 1e3)}k`;
  }
  return String(n);
}

function trim(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

/** Every node of the diagram, depth first. */
export function* walk(node: DiagramNode): Generator<DiagramNode> {
  yield node;
  for (const child of node.children) {
    yield* walk(child);
  }
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function describeValue(x: unknown): string {
  return x === null ? 'null' : Array.isArray(x) ? 'a list' : typeof x;
}
