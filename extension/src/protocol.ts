/**
 * The comm protocol between the kernel (`workbench/comm.py`) and the Pipelines panel.
 *
 * Kernel → frontend, after every executed cell and in answer to "refresh":
 *     {type: "pipelines", pipelines: [{name, root, stages, params, device, steps}, ...]}
 * Frontend → kernel, each answered with the same request_id:
 *     {type: "source", name, request_id}        → {type: "source", request_id, ok, text | error}
 *     {type: "export", name, path, overwrite, request_id}  → {type: "export", request_id, ok, path | error}
 *
 * `PipelineChannel` holds the last list and the pending requests; it knows nothing of JupyterLab,
 * it only needs a function that sends a message, so it is tested on its own.
 *
 *     const channel = new PipelineChannel(data => comm.send(data));
 *     comm.onMsg = msg => channel.handle(msg.content.data);
 *     const text = await channel.source('classifier');
 */

import { PipelineTree, Stage, validateTree } from './diagram';

export const COMM_TARGET = 'workbench.pipelines';

/** One pipeline living in the kernel, as the kernel reports it. */
export interface PipelineInfo {
  name: string;
  root: PipelineTree;
  /** Step labels per stage, in order. */
  stages: Record<Stage, string[]>;
  params: number;
  device: string;
  steps: number;
  /** Notebook definitions the pipeline holds that the notebook has redefined since. */
  stale: StaleDefinition[];
  /** A default path for the Export dialog that no file in the kernel's directory uses yet. */
  exportPath: string;
}

/** A function or class the pipeline holds, whose name the notebook has since bound to a new definition. */
export interface StaleDefinition {
  name: string;
  kind: string;
  definedIn: string;
  redefinedIn: string;
  message: string;
}

export type Request =
  | { type: 'refresh' }
  | { type: 'source'; name: string; request_id: string }
  | {
      type: 'export';
      name: string;
      path: string;
      overwrite: boolean;
      request_id: string;
    };

export type Listener = (pipelines: PipelineInfo[]) => void;

interface Pending {
  kind: 'source' | 'export';
  resolve: (value: string) => void;
  reject: (error: Error) => void;
}

/** A request the kernel answered with an error; the message is the kernel's. */
export class KernelRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KernelRequestError';
  }
}

export class PipelineChannel {
  private _pipelines: PipelineInfo[] = [];
  private _listeners: Listener[] = [];
  private _pending = new Map<string, Pending>();
  private _counter = 0;
  private _disposed = false;

  constructor(private _send: (request: Request) => void) {}

  /** The pipelines of the last update, in registration order. */
  get pipelines(): PipelineInfo[] {
    return this._pipelines;
  }

  /** Requests sent and not yet answered. */
  get pendingCount(): number {
    return this._pending.size;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Call `listener` with the list after every update; returns a function that unsubscribes. */
  subscribe(listener: Listener): () => void {
    this._listeners.push(listener);
    return () => {
      this._listeners = this._listeners.filter(l => l !== listener);
    };
  }

  /** Ask the kernel to send the list now. */
  refresh(): void {
    this._checkOpen();
    this._send({ type: 'refresh' });
  }

  /** The source a bundle of `name` would contain (what `%wb_deps NAME` shows). */
  source(name: string): Promise<string> {
    return this._request('source', id => ({
      type: 'source',
      name,
      request_id: id
    }));
  }

  /**
   * Save `name` as a bundle at `path` in the kernel's working directory; resolves to the saved path.
   * An existing bundle is only replaced with `overwrite`.
   */
  exportBundle(name: string, path: string, overwrite = false): Promise<string> {
    if (!path.trim()) {
      return Promise.reject(
        new KernelRequestError('no path given for the bundle')
      );
    }
    return this._request('export', id => ({
      type: 'export',
      name,
      path,
      overwrite,
      request_id: id
    }));
  }

  /**
   * Handle one message from the kernel. Unknown or malformed messages throw an error that says
   * what was wrong; they never change the list.
   */
  handle(data: unknown): void {
    if (typeof data !== 'object' || data === null) {
      throw new Error(
        `workbench comm: expected a message object, got ${String(data)}`
      );
    }
    const msg = data as Record<string, unknown>;
    switch (msg.type) {
      case 'pipelines':
        this._setPipelines(parsePipelines(msg.pipelines));
        return;
      case 'source':
      case 'export':
        this._answer(msg);
        return;
      default:
        throw new Error(
          `workbench comm: unknown message type ${JSON.stringify(msg.type)}`
        );
    }
  }

  /** Fail every pending request (the kernel went away) and stop. */
  dispose(reason = 'the kernel connection was closed'): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    for (const pending of this._pending.values()) {
      pending.reject(new KernelRequestError(reason));
    }
    this._pending.clear();
    this._listeners = [];
  }

  private _request(
    kind: 'source' | 'export',
    build: (id: string) => Request
  ): Promise<string> {
    if (this._disposed) {
      return Promise.reject(
        new KernelRequestError('the kernel connection is closed')
      );
    }
    const id = `wb-${++this._counter}`;
    const promise = new Promise<string>((resolve, reject) => {
      this._pending.set(id, { kind, resolve, reject });
    });
    try {
      this._send(build(id));
    } catch (error) {
      this._pending.delete(id);
      return Promise.reject(error);
    }
    return promise;
  }

  private _answer(msg: Record<string, unknown>): void {
    const id = msg.request_id;
    const pending = typeof id === 'string' ? this._pending.get(id) : undefined;
    if (!pending) {
      return; // an answer to another frontend's request on a shared comm
    }
    this._pending.delete(id as string);
    if (pending.kind !== msg.type) {
      pending.reject(
        new KernelRequestError(
          `expected a ${pending.kind} answer, got ${String(msg.type)}`
        )
      );
    } else if (msg.ok === true) {
      pending.resolve(String(msg.type === 'source' ? msg.text : msg.path));
    } else {
      pending.reject(
        new KernelRequestError(String(msg.error ?? 'the kernel gave no reason'))
      );
    }
  }

  private _setPipelines(pipelines: PipelineInfo[]): void {
    this._pipelines = pipelines;
    for (const listener of [...this._listeners]) {
      listener(pipelines);
    }
  }

  private _checkOpen(): void {
    if (this._disposed) {
      throw new KernelRequestError('the kernel connection is closed');
    }
  }
}

/** Check the kernel's list; a bad entry is an error naming the pipeline. */
export function parsePipelines(raw: unknown): PipelineInfo[] {
  if (!Array.isArray(raw)) {
    throw new Error('workbench comm: "pipelines" must be a list');
  }
  return raw.map((entry, i) => {
    if (
      typeof entry !== 'object' ||
      entry === null ||
      typeof entry.name !== 'string'
    ) {
      throw new Error(`workbench comm: pipeline #${i} has no name`);
    }
    validateTree(entry.root, '', `pipeline ${JSON.stringify(entry.name)}`);
    const stages = entry.stages ?? {};
    return {
      name: entry.name,
      root: entry.root,
      stages: {
        preprocess: asStrings(stages.preprocess),
        forward: asStrings(stages.forward),
        postprocess: asStrings(stages.postprocess)
      },
      params: Number(entry.params ?? entry.root.params ?? 0),
      device: String(entry.device ?? 'cpu'),
      steps: Number(entry.steps ?? 0),
      stale: parseStale(entry.stale),
      exportPath:
        typeof entry.export_path === 'string' && entry.export_path
          ? entry.export_path
          : `${entry.name}-export.wb`
    };
  });
}

function parseStale(raw: unknown): StaleDefinition[] {
  if (!Array.isArray(raw)) {
    return [];
  }
  return raw
    .filter(
      s => typeof s === 'object' && s !== null && typeof s.name === 'string'
    )
    .map(s => ({
      name: s.name,
      kind: String(s.kind ?? 'definition'),
      definedIn: String(s.defined_in ?? ''),
      redefinedIn: String(s.redefined_in ?? ''),
      message: String(s.message ?? `${s.name} was redefined`)
    }));
}

function asStrings(x: unknown): string[] {
  return Array.isArray(x) ? x.map(String) : [];
}

/** The code the "inspect" action runs in the notebook. */
export function inspectCode(name: string, inputs: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new Error(`not a pipeline name: ${JSON.stringify(name)}`);
  }
  const expr = inputs.trim();
  if (!expr) {
    throw new Error(
      'give an inputs expression, e.g. a list of items or a dataset'
    );
  }
  return `import workbench\nworkbench.inspect(workbench.registry.get(${JSON.stringify(name)}), ${expr})`;
}
