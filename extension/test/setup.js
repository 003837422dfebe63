// jsdom has no DragEvent; Lumino's drag-and-drop module subclasses it when loaded.
if (typeof globalThis.DragEvent === 'undefined') {
  globalThis.DragEvent = class DragEvent extends MouseEvent {};
}
