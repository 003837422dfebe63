/**
 * The body of the Pipelines panel's Export dialog: where to save the bundle, and whether an
 * existing bundle there may be replaced.
 *
 * The path starts at a default the kernel chose so that it collides with nothing (`NAME-export.wb`);
 * replacing is off unless the user ticks "Replace an existing bundle", which is sent as `overwrite`.
 *
 *     const form = new ExportForm('clf-export.wb');
 *     const result = await showDialog({ title: 'Export clf', body: form, ... });
 *     const { path, overwrite } = result.value;   // form.getValue()
 */

import { Widget } from '@lumino/widgets';

export interface ExportChoice {
  path: string;
  overwrite: boolean;
}

export class ExportForm extends Widget {
  readonly pathInput: HTMLInputElement;
  readonly overwriteBox: HTMLInputElement;

  constructor(defaultPath: string) {
    super();
    this.addClass('wb-export-form');
    const doc = this.node.ownerDocument;
    const pathLabel = doc.createElement('label');
    pathLabel.textContent =
      'Save the bundle to (path relative to the kernel’s working directory)';
    this.pathInput = doc.createElement('input');
    this.pathInput.type = 'text';
    this.pathInput.className = 'jp-mod-styled wb-export-path';
    this.pathInput.value = defaultPath;
    pathLabel.appendChild(this.pathInput);
    const boxLabel = doc.createElement('label');
    boxLabel.className = 'wb-export-overwrite';
    this.overwriteBox = doc.createElement('input');
    this.overwriteBox.type = 'checkbox';
    this.overwriteBox.checked = false;
    boxLabel.append(
      this.overwriteBox,
      doc.createTextNode(' Replace an existing bundle')
    );
    this.node.append(pathLabel, boxLabel);
  }

  /** What the user chose; the dialog passes this on as its value. */
  getValue(): ExportChoice {
    return {
      path: this.pathInput.value.trim(),
      overwrite: this.overwriteBox.checked
    };
  }
}
