import {
  KernelRequestError,
  PipelineChannel,
  Request,
  inspectCode,
  parsePipelines
} from '../src/protocol';
import { classifier } from './fixtures';

function entry(name: string) {
  return {
    name,
    root: classifier(),
    steps: 5,
    params: 15,
    device: 'cpu',
    stages: {
      preprocess: ['to_tensor', 'flip', 'identity'],
      forward: ['Linear'],
      postprocess: ['argmax']
    }
  };
}

function channel(): { ch: PipelineChannel; sent: Request[] } {
  const sent: Request[] = [];
  return { ch: new PipelineChannel(r => sent.push(r)), sent };
}

describe('PipelineChannel', () => {
  it('keeps the pushed list and tells subscribers', () => {
    const { ch } = channel();
    const seen: string[][] = [];
    const stop = ch.subscribe(list => seen.push(list.map(p => p.name)));
    ch.handle({ type: 'pipelines', pipelines: [entry('clf'), entry('enc')] });
    expect(ch.pipelines.map(p => p.stages.forward)).toEqual([
      ['Linear'],
      ['Linear']
    ]);
    stop();
    ch.handle({ type: 'pipelines', pipelines: [] });
    expect(seen).toEqual([['clf', 'enc']]);
    expect(ch.pipelines).toEqual([]);
  });

  it('rejects a malformed list without changing the current one', () => {
    const { ch } = channel();
    ch.handle({ type: 'pipelines', pipelines: [entry('clf')] });
    const bad = entry('broken');
    (bad.root.children[0] as any).kind = 'loop';
    expect(() => ch.handle({ type: 'pipelines', pipelines: [bad] })).toThrow(
      'pipeline "broken" node [0]: unknown kind "loop"'
    );
    expect(ch.pipelines.map(p => p.name)).toEqual(['clf']);
    expect(() => ch.handle({ type: 'surprise' })).toThrow(
      /unknown message type "surprise"/
    );
  });

  it('matches answers to requests by id', async () => {
    const { ch, sent } = channel();
    const first = ch.source('clf');
    const second = ch.exportBundle('clf', 'out/clf.wb');
    expect(sent).toEqual([
      { type: 'source', name: 'clf', request_id: 'wb-1' },
      {
        type: 'export',
        name: 'clf',
        path: 'out/clf.wb',
        overwrite: false,
        request_id: 'wb-2'
      }
    ]);
    ch.handle({
      type: 'export',
      request_id: 'wb-2',
      ok: true,
      path: '/home/u/out/clf.wb'
    });
    ch.handle({
      type: 'source',
      request_id: 'wb-1',
      ok: true,
      text: 'def f(x): ...'
    });
    await expect(first).resolves.toBe('def f(x): ...');
    await expect(second).resolves.toBe('/home/u/out/clf.wb');
    expect(ch.pendingCount).toBe(0);
  });

  it("passes on the kernel's error message", async () => {
    const { ch } = channel();
    const answer = ch.exportBundle('clf', 'clf.wb');
    ch.handle({
      type: 'export',
      request_id: 'wb-1',
      ok: false,
      error: "FileExistsError: 'clf.wb' exists"
    });
    await expect(answer).rejects.toThrow("FileExistsError: 'clf.wb' exists");
    await expect(answer).rejects.toBeInstanceOf(KernelRequestError);
  });

  it('ignores answers to requests it did not make', () => {
    const { ch } = channel();
    expect(() =>
      ch.handle({ type: 'source', request_id: 'other-7', ok: true, text: 'x' })
    ).not.toThrow();
  });

  it('refuses an empty export path before asking the kernel', async () => {
    const { ch, sent } = channel();
    await expect(ch.exportBundle('clf', '   ')).rejects.toThrow(
      'no path given for the bundle'
    );
    expect(sent).toEqual([]);
  });

  it('fails pending requests when the kernel goes away', async () => {
    const { ch } = channel();
    const pending = ch.source('clf');
    ch.dispose('the kernel restarted');
    await expect(pending).rejects.toThrow('the kernel restarted');
    await expect(ch.source('clf')).rejects.toThrow(/closed/);
    expect(() => ch.refresh()).toThrow(/closed/);
  });

  it('reports a failed send and forgets the request', async () => {
    const ch = new PipelineChannel(() => {
      throw new Error('workbench is not loaded in this kernel');
    });
    await expect(ch.source('clf')).rejects.toThrow(
      'workbench is not loaded in this kernel'
    );
    expect(ch.pendingCount).toBe(0);
  });
});

describe('parsePipelines and inspectCode', () => {
  it('fills missing stage lists and names the entry without a name', () => {
    const [p] = parsePipelines([{ name: 'clf', root: classifier() }]);
    expect(p.stages).toEqual({ preprocess: [], forward: [], postprocess: [] });
    expect(p.params).toBe(15);
    expect(() => parsePipelines([{ root: classifier() }])).toThrow(
      'pipeline #0 has no name'
    );
    expect(() => parsePipelines('nope')).toThrow('"pipelines" must be a list');
  });

  it('writes the inspect call for a registered pipeline', () => {
    expect(inspectCode('clf', ' X[:8] ')).toBe(
      'import workbench\nworkbench.inspect(workbench.registry.get("clf"), X[:8])'
    );
    expect(() => inspectCode('clf', '  ')).toThrow(/inputs expression/);
    expect(() => inspectCode('x; import os', 'X')).toThrow(
      /not a pipeline name/
    );
  });
});
