/**
 * Draws the diagram model as plain DOM: compositions as columns of steps joined by arrows,
 * rollouts and parallels as rows of branches side by side, `batch`/`unbatch` as rules across the
 * diagram, every step tinted by its stage. Composite nodes collapse and expand on click (or with
 * Enter/Space); hovering shows the type, stage and parameter count.
 *
 *     host.appendChild(drawDiagram(buildDiagram(bundle.root), document));
 */

import { Diagram, DiagramNode, STAGES, formatParams } from './diagram';

/** Build the element tree for a diagram. */
export function drawDiagram(
  diagram: Diagram,
  doc: Document = document
): HTMLElement {
  const root = el(doc, 'div', 'wb-diagram');
  root.appendChild(drawSummary(diagram, doc));
  const body = el(doc, 'div', 'wb-diagram-body');
  body.appendChild(drawNode(diagram.root, doc));
  root.appendChild(body);
  return root;
}

function drawSummary(diagram: Diagram, doc: Document): HTMLElement {
  const bar = el(doc, 'div', 'wb-diagram-summary');
  const title = el(doc, 'span', 'wb-diagram-title');
  const root = diagram.root;
  title.textContent = root.name ?? root.label;
  bar.appendChild(title);
  const facts: string[] = [];
  const steps = STAGES.reduce((n, s) => n + diagram.stepCounts[s], 0);
  facts.push(`${steps} step${steps === 1 ? '' : 's'}`);
  if (diagram.totalParams) {
    facts.push(`${formatParams(diagram.totalParams)} params`);
  }
  const info = el(doc, 'span', 'wb-diagram-facts');
  info.textContent = facts.join(' · ');
  bar.appendChild(info);
  const legend = el(doc, 'span', 'wb-diagram-legend');
  for (const stage of STAGES) {
    const chip = el(doc, 'span', `wb-stage-chip wb-stage-${stage}`);
    chip.textContent = `${stage} ${diagram.stepCounts[stage]}`;
    chip.title = `${diagram.stepCounts[stage]} step(s) in the ${stage} stage`;
    legend.appendChild(chip);
  }
  bar.appendChild(legend);
  return bar;
}

/** Draw one node (and its children). */
export function drawNode(node: DiagramNode, doc: Document): HTMLElement {
  if (node.layout === 'rule') {
    const rule = el(doc, 'div', `wb-rule wb-rule-${node.kind}`);
    rule.dataset.path = node.path;
    rule.title = node.tooltip;
    const label = el(doc, 'span', 'wb-rule-label');
    label.textContent = node.label || node.kind;
    rule.appendChild(label);
    return rule;
  }
  if (node.layout === 'leaf') {
    const leaf = el(doc, 'div', `wb-node wb-leaf wb-stage-${node.stage}`);
    leaf.dataset.path = node.path;
    leaf.dataset.kind = node.kind;
    leaf.title = node.tooltip;
    const label = el(doc, 'span', 'wb-node-label');
    label.textContent = node.label;
    leaf.appendChild(label);
    if (node.params) {
      const params = el(doc, 'span', 'wb-node-params');
      params.textContent = formatParams(node.params);
      leaf.appendChild(params);
    }
    return leaf;
  }
  const box = el(
    doc,
    'div',
    `wb-node wb-group wb-kind-${node.kind} wb-stage-${node.stage}`
  );
  box.dataset.path = node.path;
  box.dataset.kind = node.kind;
  const header = el(doc, 'div', 'wb-group-header');
  header.title = node.tooltip;
  header.tabIndex = 0;
  header.setAttribute('role', 'button');
  header.setAttribute('aria-expanded', 'true');
  const caret = el(doc, 'span', 'wb-caret');
  header.appendChild(caret);
  const symbol = el(doc, 'span', 'wb-group-symbol');
  symbol.textContent = node.symbol;
  header.appendChild(symbol);
  const label = el(doc, 'span', 'wb-node-label');
  label.textContent = node.label;
  header.appendChild(label);
  const count = el(doc, 'span', 'wb-group-count');
  count.textContent = `${node.children.length}`;
  header.appendChild(count);
  if (node.params) {
    const params = el(doc, 'span', 'wb-node-params');
    params.textContent = formatParams(node.params);
    header.appendChild(params);
  }
  box.appendChild(header);

  const body = el(doc, 'div', `wb-group-body wb-${node.layout}`);
  node.children.forEach((child, i) => {
    if (node.layout === 'column') {
      if (
        i > 0 &&
        child.layout !== 'rule' &&
        node.children[i - 1].layout !== 'rule'
      ) {
        body.appendChild(el(doc, 'div', 'wb-arrow'));
      }
      body.appendChild(drawNode(child, doc));
    } else {
      const branch = el(doc, 'div', 'wb-branch');
      if (node.branchLabels[i]) {
        const tag = el(doc, 'div', 'wb-branch-label');
        tag.textContent = node.branchLabels[i];
        branch.appendChild(tag);
      }
      branch.appendChild(drawNode(child, doc));
      body.appendChild(branch);
    }
  });
  box.appendChild(body);

  const toggle = (): void =>
    setCollapsed(box, !box.classList.contains('wb-collapsed'));
  header.addEventListener('click', event => {
    event.stopPropagation();
    toggle();
  });
  header.addEventListener('keydown', event => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      toggle();
    }
  });
  return box;
}

/** Collapse or expand a composite node drawn by `drawNode`. */
export function setCollapsed(box: HTMLElement, collapsed: boolean): void {
  box.classList.toggle('wb-collapsed', collapsed);
  const header = box.querySelector(':scope > .wb-group-header');
  header?.setAttribute('aria-expanded', String(!collapsed));
}

function el<K extends keyof HTMLElementTagNameMap>(
  doc: Document,
  tag: K,
  className: string
): HTMLElementTagNameMap[K] {
  const node = doc.createElement(tag);
  node.className = className;
  return node;
}
