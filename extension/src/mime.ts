/**
 * The MIME renderer for `application/vnd.workbench.pipeline+json`: a pipeline displayed in a
 * notebook (`pl` as the last expression of a cell) becomes an interactive diagram.
 */

import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { MIME_TYPE, buildDiagram, validateBundle } from './diagram';
import { drawDiagram } from './render';

export class PipelineDiagram extends Widget implements IRenderMime.IRenderer {
  constructor(private _mimeType: string) {
    super();
    this.addClass('wb-pipeline-output');
  }

  renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    this.node.textContent = '';
    try {
      const bundle = validateBundle(model.data[this._mimeType]);
      this.node.appendChild(
        drawDiagram(buildDiagram(bundle.root), this.node.ownerDocument)
      );
    } catch (error) {
      const message = document.createElement('pre');
      message.className = 'wb-diagram-error';
      message.textContent = `cannot draw this pipeline: ${(error as Error).message}`;
      this.node.appendChild(message);
    }
    return Promise.resolve();
  }
}

export const rendererFactory: IRenderMime.IRendererFactory = {
  safe: true,
  mimeTypes: [MIME_TYPE],
  // Ahead of text/html (rank 50), so the diagram wins over the HTML fallback.
  defaultRank: 40,
  createRenderer: options => new PipelineDiagram(options.mimeType)
};

const extension: IRenderMime.IExtension = {
  id: 'workbench-jupyterlab:diagram',
  rendererFactory,
  rank: 40,
  dataType: 'json'
};

export default extension;
