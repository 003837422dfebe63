import { ExportForm } from '../src/exportform';
import { PipelinesPanel } from '../src/panel';
import { PipelineChannel, Request, parsePipelines } from '../src/protocol';
import { classifier } from './fixtures';

describe('ExportForm', () => {
  it('starts at the default path with replacing off', () => {
    const form = new ExportForm('topic-export-2.wb');
    expect(form.pathInput.value).toBe('topic-export-2.wb');
    expect(form.overwriteBox.checked).toBe(false);
    expect(form.node.textContent).toContain('Replace an existing bundle');
    expect(form.getValue()).toEqual({
      path: 'topic-export-2.wb',
      overwrite: false
    });
  });

  it('gives the edited path and the ticked checkbox', () => {
    const form = new ExportForm('topic-export.wb');
    form.pathInput.value = '  out/topic.wb ';
    form.overwriteBox.click();
    expect(form.getValue()).toEqual({ path: 'out/topic.wb', overwrite: true });
  });

  it('sends the choice to the kernel as overwrite', () => {
    const sent: Request[] = [];
    const channel = new PipelineChannel(r => sent.push(r));
    const form = new ExportForm('topic-export.wb');
    form.overwriteBox.click();
    const { path, overwrite } = form.getValue();
    void channel.exportBundle('topic', path, overwrite);
    void channel.exportBundle('topic', 'b.wb');
    expect(sent).toEqual([
      {
        type: 'export',
        name: 'topic',
        path: 'topic-export.wb',
        overwrite: true,
        request_id: 'wb-1'
      },
      {
        type: 'export',
        name: 'topic',
        path: 'b.wb',
        overwrite: false,
        request_id: 'wb-2'
      }
    ]);
  });
});

describe('the panel and the kernel’s export path and stale definitions', () => {
  const raw = {
    name: 'topic',
    root: classifier(),
    steps: 5,
    params: 15,
    device: 'cpu',
    stages: { preprocess: [], forward: [], postprocess: [] },
    export_path: 'topic-export-2.wb',
    stale: [
      {
        name: 'encode',
        kind: 'function',
        defined_in: 'cell In[4]',
        redefined_in: 'cell In[9]',
        message:
          "function 'encode' from cell In[4] was redefined in cell In[9]; ..."
      }
    ]
  };

  it('opens the dialog with the kernel’s non-colliding default path', () => {
    const [info] = parsePipelines([raw]);
    expect(info.exportPath).toBe('topic-export-2.wb');
    const opened: string[] = [];
    const panel = new PipelinesPanel({
      inspect: () => undefined,
      source: () => undefined,
      exportBundle: (name, path) => opened.push(`${name} ${path}`),
      refresh: () => undefined
    });
    panel.setState({
      kind: 'ready',
      notebook: 'news.ipynb',
      pipelines: [info]
    });
    panel.node.querySelector<HTMLButtonElement>('.wb-action-export')!.click();
    expect(opened).toEqual(['topic topic-export-2.wb']);
    const stale = panel.node.querySelector<HTMLElement>('.wb-pipeline-stale')!;
    expect(stale.textContent).toBe(
      '⚠ holds an old encode: redefined since it was built'
    );
    expect(stale.title).toContain('redefined in cell In[9]');
  });

  it('shows no warning and a name-based default when the kernel sends none', () => {
    const [info] = parsePipelines([
      { ...raw, stale: undefined, export_path: undefined }
    ]);
    expect(info.stale).toEqual([]);
    expect(info.exportPath).toBe('topic-export.wb');
  });
});
