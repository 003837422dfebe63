/**
 * The "Pipelines" side panel: the pipelines living in the current notebook's kernel, each
 * expandable to its stages and steps, with inspect / source / export actions.
 *
 * The panel only draws; `index.ts` tells it what to show (`setState`) and what the actions do.
 */

import { Widget } from '@lumino/widgets';

import { DiagramNode, STAGES, buildDiagram, formatParams } from './diagram';
import { PipelineInfo } from './protocol';

export interface PanelActions {
  inspect(name: string): void;
  source(name: string): void;
  exportBundle(name: string, defaultPath: string): void;
  refresh(): void;
}

/** What the panel shows: no notebook, a kernel without workbench, or the list. */
export type PanelState =
  | { kind: 'no-notebook' }
  | { kind: 'connecting'; notebook: string }
  | { kind: 'not-loaded'; notebook: string }
  | { kind: 'ready'; notebook: string; pipelines: PipelineInfo[] };

export class PipelinesPanel extends Widget {
  private _expanded = new Set<string>();
  private _state: PanelState = { kind: 'no-notebook' };

  constructor(private _actions: PanelActions) {
    super();
    this.addClass('wb-panel');
    this.render();
  }

  get state(): PanelState {
    return this._state;
  }

  setState(state: PanelState): void {
    this._state = state;
    this.render();
  }

  render(): void {
    const doc = this.node.ownerDocument;
    this.node.textContent = '';
    const header = doc.createElement('div');
    header.className = 'wb-panel-header';
    const title = doc.createElement('span');
    title.className = 'wb-panel-title';
    title.textContent = 'Pipelines';
    header.appendChild(title);
    const refresh = button(
      doc,
      '⟳',
      'Ask the kernel for its pipelines again',
      'wb-refresh'
    );
    refresh.addEventListener('click', () => this._actions.refresh());
    refresh.disabled = this._state.kind === 'no-notebook';
    header.appendChild(refresh);
    this.node.appendChild(header);

    const status = doc.createElement('div');
    status.className = 'wb-panel-status';
    this.node.appendChild(status);
    const state = this._state;
    switch (state.kind) {
      case 'no-notebook':
        status.textContent = 'Open a notebook to see its pipelines.';
        return;
      case 'connecting':
        status.textContent = `${state.notebook}: connecting to the kernel…`;
        return;
      case 'not-loaded':
        status.textContent = `${state.notebook}: workbench is not loaded in this kernel. Run "import workbench" in a cell.`;
        return;
      case 'ready':
        status.textContent =
          state.pipelines.length === 0
            ? `${state.notebook}: no pipelines yet. Register one with %%pipeline NAME or workbench.registry.register.`
            : `${state.notebook}: ${state.pipelines.length} pipeline${state.pipelines.length === 1 ? '' : 's'}`;
        break;
    }
    const list = doc.createElement('ul');
    list.className = 'wb-pipeline-list';
    for (const info of state.pipelines) {
      list.appendChild(this._drawPipeline(info, doc));
    }
    this.node.appendChild(list);
  }

  private _drawPipeline(info: PipelineInfo, doc: Document): HTMLElement {
    const item = doc.createElement('li');
    item.className = 'wb-pipeline';
    item.dataset.name = info.name;
    const expanded = this._expanded.has(info.name);
    item.classList.toggle('wb-expanded', expanded);

    const head = doc.createElement('div');
    head.className = 'wb-pipeline-head';
    head.setAttribute('role', 'button');
    head.setAttribute('aria-expanded', String(expanded));
    head.tabIndex = 0;
    const caret = doc.createElement('span');
    caret.className = 'wb-caret';
    head.appendChild(caret);
    const name = doc.createElement('span');
    name.className = 'wb-pipeline-name';
    name.textContent = info.name;
    head.appendChild(name);
    const facts = doc.createElement('span');
    facts.className = 'wb-pipeline-facts';
    const parts = [`${info.steps} step${info.steps === 1 ? '' : 's'}`];
    if (info.params) {
      parts.push(`${formatParams(info.params)} params`);
    }
    parts.push(info.device);
    facts.textContent = parts.join(' · ');
    head.appendChild(facts);
    const toggle = (): void => {
      if (this._expanded.has(info.name)) {
        this._expanded.delete(info.name);
      } else {
        this._expanded.add(info.name);
      }
      this.render();
    };
    head.addEventListener('click', toggle);
    head.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        toggle();
      }
    });
    item.appendChild(head);

    if (info.stale.length) {
      const stale = doc.createElement('div');
      stale.className = 'wb-pipeline-stale';
      stale.setAttribute('role', 'status');
      const names = info.stale.map(s => s.name).join(', ');
      stale.textContent = `⚠ holds an old ${names}: redefined since it was built`;
      stale.title = info.stale.map(s => s.message).join('\n');
      item.appendChild(stale);
    }

    const actions = doc.createElement('div');
    actions.className = 'wb-pipeline-actions';
    const inspect = button(
      doc,
      'Inspect',
      `Open the inspector for ${info.name} in a new cell`,
      'wb-action-inspect'
    );
    inspect.addEventListener('click', () => this._actions.inspect(info.name));
    const source = button(
      doc,
      'Source',
      `Show the source a bundle of ${info.name} would contain`,
      'wb-action-source'
    );
    source.addEventListener('click', () => this._actions.source(info.name));
    const exp = button(
      doc,
      'Export…',
      `Save ${info.name} as a bundle`,
      'wb-action-export'
    );
    exp.addEventListener('click', () =>
      this._actions.exportBundle(info.name, info.exportPath)
    );
    actions.append(inspect, source, exp);
    item.appendChild(actions);

    if (expanded) {
      item.appendChild(drawDetails(info, doc));
    }
    return item;
  }
}

/** Stages and the step tree of one pipeline. */
export function drawDetails(info: PipelineInfo, doc: Document): HTMLElement {
  const details = doc.createElement('div');
  details.className = 'wb-pipeline-details';
  const stages = doc.createElement('div');
  stages.className = 'wb-pipeline-stages';
  for (const stage of STAGES) {
    const row = doc.createElement('div');
    row.className = `wb-stage-row wb-stage-${stage}`;
    row.dataset.stage = stage;
    const label = doc.createElement('span');
    label.className = 'wb-stage-name';
    label.textContent = stage;
    const steps = doc.createElement('span');
    steps.className = 'wb-stage-steps';
    steps.textContent = info.stages[stage].length
      ? info.stages[stage].join(', ')
      : '—';
    row.append(label, steps);
    stages.appendChild(row);
  }
  details.appendChild(stages);
  const tree = doc.createElement('ul');
  tree.className = 'wb-step-tree';
  const root = buildDiagram(info.root).root;
  const nodes = root.kind === 'compose' && !root.name ? root.children : [root];
  for (const node of nodes) {
    tree.appendChild(drawStep(node, doc));
  }
  details.appendChild(tree);
  return details;
}

function drawStep(node: DiagramNode, doc: Document): HTMLElement {
  const item = doc.createElement('li');
  item.className =
    node.layout === 'rule'
      ? `wb-step wb-step-rule`
      : `wb-step wb-stage-${node.stage}`;
  item.dataset.path = node.path;
  item.title = node.tooltip;
  const label = doc.createElement('span');
  label.className = 'wb-step-label';
  label.textContent =
    node.layout === 'rule'
      ? `── ${node.label || node.kind} ──`
      : `${node.path.match(/\[\d+\]$/)?.[0] ?? ''} ${node.symbol ? node.symbol + ' ' : ''}${node.label}`.trim();
  item.appendChild(label);
  if (node.params) {
    const params = doc.createElement('span');
    params.className = 'wb-step-params';
    params.textContent = formatParams(node.params);
    item.appendChild(params);
  }
  if (node.children.length) {
    const sub = doc.createElement('ul');
    for (const child of node.children) {
      sub.appendChild(drawStep(child, doc));
    }
    item.appendChild(sub);
  }
  return item;
}

function button(
  doc: Document,
  text: string,
  title: string,
  className: string
): HTMLButtonElement {
  const b = doc.createElement('button');
  b.className = `wb-button ${className}`;
  b.textContent = text;
  b.title = title;
  b.type = 'button';
  return b;
}
