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
/** The kinds of leaves and stage markers; every other kind is a composite, described by its node. */
export const LEAF_KINDS = ['step', 'batch', 'unbatch'] as const;
/** How a composite's children are drawn, as its Python class declares (`_Shape.layout`). */
export const COMPOSITE_LAYOUTS = ['column', 'row'] as const;
export type CompositeLayout = (typeof COMPOSITE_LAYOUTS)[number];

/** What every node says about itself, in the tree the core sends and in the diagram model. */
export interface NodeFacts {
  kind: string;
  label: string;
  name: string | null;
  type: string;
  stage: Stage;
  params: number;
}

/**
 * One node of `describe(pipeline)`. Composite nodes carry what their class declares: `symbol`,
 * `layout` and a label per branch; nodes saved before they did (older notebook outputs) lack them.
 */
export interface PipelineTree extends NodeFacts {
  children: PipelineTree[];
  symbol?: string;
  layout?: CompositeLayout;
  branches?: string[];
  mode?: string;
}

/** What the MIME bundle carries. */
export interface PipelineBundle {
  version: 1;
  root: PipelineTree;
}

export type Layout = 'leaf' | 'column' | 'row' | 'rule';

export interface DiagramNode extends NodeFacts {
  /** Position from the root, as the core names steps in errors: `[2][0]`; the root is `''`. */
  path: string;
  layout: Layout;
  /** The operator or word the composite's class declares (`>>`, `+`, `if`...), `''` for leaves. */
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

/**
 * The shapes of the composites that existed before nodes described themselves, for notebook
 * outputs saved then. Newer composites always arrive with their shape; this table does not grow.
 */
const SAVED_BEFORE_SHAPES: Record<
  string,
  { symbol: string; layout: CompositeLayout; branches?: string[] }
> = {
  compose: { symbol: '>>', layout: 'column' },
  map: { symbol: '~', layout: 'column' },
  rollout: { symbol: '+', layout: 'row' },
  parallel: { symbol: '/', layout: 'row' },
  if: { symbol: 'if', layout: 'row', branches: ['then', 'else'] },
  try: {
    symbol: 'try',
    layout: 'row',
    branches: ['try', 'except', 'else', 'finally']
  }
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
    throw new PipelineDataError(
      `${MIME_TYPE}: expected an object, got ${describeValue(data)}`
    );
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
export function validateTree(
  node: unknown,
  path = '',
  context = 'pipeline'
): PipelineTree {
  const where = `${context} node ${path || '(root)'}`;
  if (!isObject(node)) {
    throw new PipelineDataError(
      `${where}: expected an object, got ${describeValue(node)}`
    );
  }
  if (typeof node.kind !== 'string' || !node.kind) {
    throw new PipelineDataError(`${where}: "kind" must be a non-empty string`);
  }
  if (!(LEAF_KINDS as readonly string[]).includes(node.kind)) {
    if (node.layout === undefined && !(node.kind in SAVED_BEFORE_SHAPES)) {
      throw new PipelineDataError(
        `${where}: unknown kind ${JSON.stringify(node.kind)} without a "layout"`
      );
    }
    if (
      node.layout !== undefined &&
      !(COMPOSITE_LAYOUTS as readonly unknown[]).includes(node.layout)
    ) {
      throw new PipelineDataError(
        `${where}: unknown layout ${JSON.stringify(node.layout)} of kind ${JSON.stringify(node.kind)} ` +
          '(this extension draws "column" and "row"); update the workbench JupyterLab extension'
      );
    }
    if (node.symbol !== undefined && typeof node.symbol !== 'string') {
      throw new PipelineDataError(`${where}: "symbol" must be a string`);
    }
    const branches = node.branches;
    if (
      branches !== undefined &&
      !(Array.isArray(branches) && branches.every(b => typeof b === 'string'))
    ) {
      throw new PipelineDataError(
        `${where}: "branches" must be a list of strings`
      );
    }
  }
  if (typeof node.label !== 'string') {
    throw new PipelineDataError(`${where}: "label" must be a string`);
  }
  if (!(STAGES as readonly string[]).includes(node.stage as string)) {
    throw new PipelineDataError(
      `${where}: unknown stage ${JSON.stringify(node.stage)}`
    );
  }
  if (typeof node.params !== 'number' || !(node.params >= 0)) {
    throw new PipelineDataError(
      `${where}: "params" must be a non-negative number`
    );
  }
  if (!Array.isArray(node.children)) {
    throw new PipelineDataError(`${where}: "children" must be a list`);
  }
  node.children.forEach((child: unknown, i: number) =>
    validateTree(child, `${path}[${i}]`, context)
  );
  return node as unknown as PipelineTree;
}

/** Turn a checked tree into the diagram model. */
export function buildDiagram(root: PipelineTree): Diagram {
  const stepCounts: Record<Stage, number> = {
    preprocess: 0,
    forward: 0,
    postprocess: 0
  };
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
      symbol: shapeOf(node)?.symbol ?? '',
      tooltip: tooltipOf(node, path),
      branchLabels: branchLabelsOf(node),
      collapsible: children.length > 0,
      children
    };
  };
  const diagramRoot = visit(root, '');
  return {
    root: diagramRoot,
    stepCounts,
    totalParams: root.params,
    hasBatch,
    hasUnbatch
  };
}

/** How a node is drawn: steps as leaves, markers as rules, composites as their class says. */
export function layoutOf(node: PipelineTree): Layout {
  if (node.kind === 'batch' || node.kind === 'unbatch') {
    return 'rule';
  }
  return shapeOf(node)?.layout ?? 'leaf';
}

/** A composite's symbol and layout; `undefined` for leaves and markers. */
function shapeOf(
  node: PipelineTree
): { symbol: string; layout: CompositeLayout } | undefined {
  if ((LEAF_KINDS as readonly string[]).includes(node.kind)) {
    return undefined;
  }
  if (node.layout === undefined) {
    return SAVED_BEFORE_SHAPES[node.kind];
  }
  return { symbol: node.symbol ?? '', layout: node.layout };
}

function branchLabelsOf(node: PipelineTree): string[] {
  if (node.layout !== undefined) {
    return node.branches ?? [];
  }
  const saved = SAVED_BEFORE_SHAPES[node.kind];
  if (!saved || saved.layout === 'column') {
    return [];
  }
  return node.children.map((_, i) => saved.branches?.[i] ?? `[${i}]`);
}

/** The hover text for a node: what it is, its stage, its parameters and where it sits. */
export function tooltipOf(node: PipelineTree, path: string): string {
  const lines: string[] = [];
  if (node.kind === 'batch' || node.kind === 'unbatch') {
    lines.push(
      node.kind === 'batch'
        ? `${node.label || 'batch'}: items are collated into batches here (preprocess → forward)`
        : `${node.label || 'unbatch'}: batches are split back into items here (forward → postprocess)`
    );
  } else {
    lines.push(
      node.name
        ? `${node.label} (${node.type})`
        : `${node.type || node.kind}: ${node.label}`
    );
    lines.push(`stage: ${node.stage}`);
    if (node.kind !== 'step') {
      const what = layoutOf(node) === 'column' ? 'steps' : 'branches';
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
