/**
 * The notebook view of an OpenFoal turn: a MIME renderer for
 * `application/vnd.openfoal.run+json` (the kernel sends it as `display_data`,
 * updated in place by `display_id = runId`; other front ends show its
 * `text/markdown` fallback).
 */

import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { IRenderMime, IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { Widget } from '@lumino/widgets';

/** The vendor MIME type of a run view. */
export const RUN_MIME = 'application/vnd.openfoal.run+json';

/** One tool call of the run. */
export interface IRunTool {
  toolCallId: string;
  toolName: string;
  argsPreview: string;
  status: string;
  durationMs?: number;
}

/** One gate of the run. */
export interface IRunGate {
  gateId: string;
  toolName: string;
  risk: string;
  status: string;
}

/** The bundle's data (the kernel's `RunView` model). */
export interface IRunView {
  runId: string;
  sessionId: string;
  status: string;
  text: string;
  tools: IRunTool[];
  gates: IRunGate[];
  error: { code?: string; message?: string } | null;
}

function el(tag: string, className: string, text?: string): HTMLElement {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** Build the DOM of a run view (text only: nothing from the model is parsed as HTML). */
export function renderRunView(view: IRunView): HTMLElement[] {
  const status = view.status.replace('_', ' ');
  const head = el('div', 'jp-OpenFoalRun-head');
  head.append(
    el('span', 'jp-OpenFoalRun-brand', 'OpenFoal'),
    el('span', `jp-OpenFoalRun-status jp-mod-${view.status}`, status)
  );
  const nodes: HTMLElement[] = [head];
  for (const tool of view.tools ?? []) {
    const row = el('div', 'jp-OpenFoalRun-tool');
    const ms =
      tool.durationMs !== undefined
        ? ` (${Math.round(tool.durationMs)} ms)`
        : '';
    row.append(
      el('code', 'jp-OpenFoalRun-toolName', tool.toolName),
      el('span', 'jp-OpenFoalRun-args', ` ${tool.argsPreview}`),
      el(
        'span',
        'jp-OpenFoalRun-toolStatus',
        tool.status ? ` ${tool.status}${ms}` : ' …'
      )
    );
    nodes.push(row);
  }
  for (const gate of view.gates ?? []) {
    nodes.push(
      el(
        'div',
        `jp-OpenFoalRun-gate jp-mod-${gate.status}`,
        `approval for ${gate.toolName} (${gate.risk}): ${gate.status}`
      )
    );
  }
  if (view.error) {
    nodes.push(
      el(
        'div',
        'jp-OpenFoalRun-error',
        `${view.error.code}: ${view.error.message}`
      )
    );
  }
  if (view.text) {
    nodes.push(el('div', 'jp-OpenFoalRun-text', view.text));
  }
  return nodes;
}

/** Renders one run view; a display update renders the new model in place. */
export class RunViewRenderer extends Widget implements IRenderMime.IRenderer {
  constructor(options: IRenderMime.IRendererOptions) {
    super();
    this._mimeType = options.mimeType;
    this.addClass('jp-OpenFoalRun');
  }

  renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const view = model.data[this._mimeType] as unknown as IRunView;
    this.node.replaceChildren(...renderRunView(view));
    return Promise.resolve();
  }

  private _mimeType: string;
}

/** The renderer factory (ranked before the markdown fallback). */
export const runViewFactory: IRenderMime.IRendererFactory = {
  safe: true,
  mimeTypes: [RUN_MIME],
  defaultRank: 0,
  createRenderer: options => new RunViewRenderer(options)
};

/** Registers the run view renderer with the application's rendermime registry. */
export const runViewPlugin: JupyterFrontEndPlugin<void> = {
  id: 'openfoal:run-view',
  description: 'Renders an OpenFoal turn in a notebook cell.',
  autoStart: true,
  requires: [IRenderMimeRegistry],
  activate: (app: JupyterFrontEnd, rendermime: IRenderMimeRegistry): void => {
    rendermime.addFactory(runViewFactory, 0);
  }
};
