/**
 * workbench for JupyterLab: the "Pipelines" side panel, following the active notebook's kernel.
 * (The pipeline diagram renderer is the MIME extension in `mime.ts`.)
 */

import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Dialog,
  InputDialog,
  showDialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import {
  INotebookTracker,
  NotebookActions,
  NotebookPanel
} from '@jupyterlab/notebook';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { PanelState, PipelinesPanel } from './panel';
import { ExportChoice, ExportForm } from './exportform';
import { COMM_TARGET, PipelineChannel, inspectCode } from './protocol';

const ICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16">' +
  '<g class="jp-icon3" fill="#616161"><rect x="1" y="2" width="5" height="3" rx="1"/>' +
  '<rect x="10" y="2" width="5" height="3" rx="1"/><rect x="5.5" y="11" width="5" height="3" rx="1"/>' +
  '<path d="M3.5 5v2.5h9V5h-1v1.5h-7V5zM7.5 7.5h1V11h-1z"/></g></svg>';

export const pipelinesIcon = new LabIcon({
  name: 'workbench:pipelines',
  svgstr: ICON_SVG
});

type LinkState = 'connecting' | 'ready' | 'not-loaded';

/**
 * The panel's connection to one kernel: a comm to the kernel's "workbench.pipelines" target,
 * opened by us when the panel starts following the kernel, or by the kernel when workbench is
 * imported there later.
 */
class KernelLink {
  state: LinkState = 'connecting';
  channel: PipelineChannel;
  private _comm: Kernel.IComm | null = null;

  constructor(
    readonly kernel: Kernel.IKernelConnection,
    private _changed: () => void
  ) {
    this.channel = this._newChannel();
    this._onTarget = this._onTarget.bind(this);
    kernel.registerCommTarget(COMM_TARGET, this._onTarget);
    kernel.statusChanged.connect(this._onStatus, this);
    this.open();
  }

  /** Open a comm from this side; the kernel answers with the list, or closes it if workbench is not loaded. */
  open(): void {
    if (this.kernel.isDisposed) {
      return;
    }
    try {
      const comm = this.kernel.createComm(COMM_TARGET);
      this._attach(comm);
      void comm.open({ type: 'refresh' });
    } catch (error) {
      console.warn('workbench: could not open the pipelines comm', error);
      this._setState('not-loaded');
    }
  }

  refresh(): void {
    if (this.state === 'ready' && this._comm && !this._comm.isDisposed) {
      this.channel.refresh();
    } else {
      this.open();
    }
  }

  dispose(): void {
    this.channel.dispose();
    if (!this.kernel.isDisposed) {
      this.kernel.removeCommTarget(COMM_TARGET, this._onTarget);
      this.kernel.statusChanged.disconnect(this._onStatus, this);
    }
  }

  private _onTarget(comm: Kernel.IComm, msg: KernelMessage.ICommOpenMsg): void {
    this._attach(comm);
    this._receive(msg.content.data);
  }

  private _attach(comm: Kernel.IComm): void {
    this._comm = comm;
    comm.onMsg = msg => this._receive(msg.content.data);
    comm.onClose = () => {
      if (this._comm === comm) {
        this._comm = null;
        this.channel.dispose('the kernel closed the workbench comm');
        this.channel = this._newChannel();
        this._setState('not-loaded');
      }
    };
  }

  private _receive(data: unknown): void {
    if (!data || typeof data !== 'object' || !('type' in data)) {
      return; // an open message without payload
    }
    try {
      this.channel.handle(data);
      this._setState('ready');
    } catch (error) {
      console.error(error);
    }
  }

  private _onStatus(_: Kernel.IKernelConnection, status: Kernel.Status): void {
    if (
      status === 'restarting' ||
      status === 'autorestarting' ||
      status === 'dead'
    ) {
      // The new kernel process knows nothing of us: wait for it to open a comm once workbench is imported.
      this.kernel.registerCommTarget(COMM_TARGET, this._onTarget);
      this._comm = null;
      this.channel.dispose('the kernel restarted');
      this.channel = this._newChannel();
      this._setState('not-loaded');
    }
  }

  private _newChannel(): PipelineChannel {
    const channel = new PipelineChannel(request => {
      if (!this._comm || this._comm.isDisposed) {
        throw new Error('workbench is not loaded in this kernel');
      }
      void this._comm.send(request as any);
    });
    channel.subscribe(() => this._changed());
    return channel;
  }

  private _setState(state: LinkState): void {
    this.state = state;
    this._changed();
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'workbench-jupyterlab:pipelines',
  description:
    'The Pipelines side panel: pipelines in the current notebook kernel.',
  autoStart: true,
  requires: [INotebookTracker],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker) => {
    const links = new Map<Kernel.IKernelConnection, KernelLink>();
    let current: NotebookPanel | null = null;

    const linkFor = (panel: NotebookPanel | null): KernelLink | null => {
      const kernel = panel?.sessionContext.session?.kernel;
      if (!kernel) {
        return null;
      }
      let link = links.get(kernel);
      if (!link) {
        link = new KernelLink(kernel, update);
        links.set(kernel, link);
        kernel.disposed.connect(() => {
          links.get(kernel)?.dispose();
          links.delete(kernel);
        });
      }
      return link;
    };

    const stateOf = (): PanelState => {
      if (!current) {
        return { kind: 'no-notebook' };
      }
      const notebook =
        current.context.localPath.split('/').pop() ?? current.title.label;
      const link = linkFor(current);
      if (!link || link.state === 'connecting') {
        return { kind: 'connecting', notebook };
      }
      if (link.state === 'not-loaded') {
        return { kind: 'not-loaded', notebook };
      }
      return { kind: 'ready', notebook, pipelines: link.channel.pipelines };
    };

    function update(): void {
      panel.setState(stateOf());
    }

    const requireLink = (): KernelLink => {
      const link = linkFor(current);
      if (!link || link.state !== 'ready') {
        throw new Error(
          'workbench is not loaded in the current notebook kernel'
        );
      }
      return link;
    };

    const runBelow = async (code: string): Promise<void> => {
      if (!current) {
        throw new Error('no notebook is active');
      }
      const notebook = current.content;
      NotebookActions.insertBelow(notebook);
      const cell = notebook.activeCell;
      if (!cell) {
        throw new Error('could not insert a cell');
      }
      cell.model.sharedModel.setSource(code);
      await NotebookActions.run(notebook, current.sessionContext);
    };

    const panel = new PipelinesPanel({
      refresh: () => linkFor(current)?.refresh(),
      inspect: async name => {
        const result = await InputDialog.getText({
          title: `Inspect ${name}`,
          label: 'Inputs (a Python expression: a list of items, a dataset, …)',
          placeholder: 'e.g. X[:16] or dataset',
          okLabel: 'Inspect'
        });
        if (!result.button.accept || result.value === null) {
          return;
        }
        try {
          await runBelow(inspectCode(name, result.value));
        } catch (error) {
          await showErrorMessage(`Inspect ${name}`, (error as Error).message);
        }
      },
      source: async name => {
        try {
          const text = await requireLink().channel.source(name);
          const body = new Widget({ node: document.createElement('pre') });
          body.addClass('wb-source-dialog');
          body.node.textContent = text;
          const result = await showDialog({
            title: `Source of ${name}`,
            body,
            buttons: [
              Dialog.cancelButton({ label: 'Close' }),
              Dialog.okButton({ label: 'Insert %wb_deps cell' })
            ]
          });
          if (result.button.accept) {
            await runBelow(`%wb_deps ${name}`);
          }
        } catch (error) {
          await showErrorMessage(`Source of ${name}`, (error as Error).message);
        }
      },
      exportBundle: async (name, defaultPath) => {
        const result = await showDialog<ExportChoice>({
          title: `Export ${name}`,
          body: new ExportForm(defaultPath),
          buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Export' })]
        });
        if (!result.button.accept || result.value === null) {
          return;
        }
        try {
          const path = await requireLink().channel.exportBundle(
            name,
            result.value.path,
            result.value.overwrite
          );
          await showDialog({
            title: `Exported ${name}`,
            body: `Saved the bundle to ${path}`,
            buttons: [Dialog.okButton({ label: 'OK' })]
          });
        } catch (error) {
          await showErrorMessage(
            `Export ${name} failed`,
            (error as Error).message
          );
        }
      }
    });
    panel.id = 'workbench-pipelines';
    panel.title.icon = pipelinesIcon;
    panel.title.caption = 'Pipelines';
    app.shell.add(panel, 'right', { rank: 600 });

    const follow = (nb: NotebookPanel | null): void => {
      if (current) {
        current.sessionContext.kernelChanged.disconnect(update);
      }
      current = nb;
      if (nb) {
        nb.sessionContext.kernelChanged.connect(update);
        void nb.sessionContext.ready.then(update);
      }
      update();
    };
    tracker.currentChanged.connect((_, nb) => follow(nb));
    follow(tracker.currentWidget);
  }
};

export default plugin;
