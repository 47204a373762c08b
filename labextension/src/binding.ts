/**
 * Binding the chat to an open notebook, so that runs use that notebook's kernel.
 */
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ISignal, Signal } from '@lumino/signaling';

/** Which notebook the chat is bound to, if any. */
export class NotebookBinding {
  constructor(private readonly _tracker: INotebookTracker | null) {}

  /** Whether a notebook can be bound now (one is open and current). */
  get canBind(): boolean {
    return !!this._tracker?.currentWidget;
  }

  /** The bound notebook's path, or `null`. */
  get path(): string | null {
    return this._panel?.context.path ?? null;
  }

  /** The bound notebook's kernel id, read at call time since kernels restart. */
  get kernelId(): string | null {
    return this._panel?.sessionContext.session?.kernel?.id ?? null;
  }

  /** Emitted when the binding changes. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Bind to the current notebook; returns false when none is open. */
  bindCurrent(): boolean {
    const panel = this._tracker?.currentWidget ?? null;
    if (!panel) {
      return false;
    }
    this.unbind();
    this._panel = panel;
    panel.disposed.connect(this._onDisposed, this);
    panel.context.pathChanged.connect(this._emit, this);
    this._changed.emit(undefined);
    return true;
  }

  /** Forget the bound notebook. */
  unbind(): void {
    if (!this._panel) {
      return;
    }
    this._panel.disposed.disconnect(this._onDisposed, this);
    this._panel.context.pathChanged.disconnect(this._emit, this);
    this._panel = null;
    this._changed.emit(undefined);
  }

  /** The `agent.run` extension fields for the bound notebook. */
  runExtras(): Record<string, unknown> {
    const kernelId = this.kernelId;
    if (!kernelId) {
      return {};
    }
    return { notebookKernelId: kernelId, notebookPath: this.path };
  }

  private _onDisposed(): void {
    this._panel = null;
    this._changed.emit(undefined);
  }

  private _emit(): void {
    this._changed.emit(undefined);
  }

  private _panel: NotebookPanel | null = null;
  private _changed = new Signal<this, void>(this);
}
