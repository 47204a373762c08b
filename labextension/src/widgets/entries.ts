/**
 * One widget per chat entry: user text, streamed Markdown, tool cards, errors, notices.
 */
import {
  IRenderMime,
  IRenderMimeRegistry,
  MimeModel
} from '@jupyterlab/rendermime';
import { TranslationBundle } from '@jupyterlab/translation';
import { caretDownIcon, caretRightIcon } from '@jupyterlab/ui-components';
import { Panel } from '@lumino/widgets';

import {
  ChatEntry,
  IAssistantEntry,
  IErrorEntry,
  INoticeEntry,
  IToolEntry,
  IUserEntry
} from '../entries';
import { IDisplayBundle } from '../protocol';
import { h } from './dom';
import { GateCard, IGateActions } from './gatecard';
import { IModelActions, isNoModel, noModelNodes } from './nomodel';

/** Rendering context shared by the entry widgets of one panel. */
export interface IEntryContext {
  rendermime: IRenderMimeRegistry;
  trans: TranslationBundle;
  /** Whether tool cards start expanded. */
  expandTools: boolean;
  /** How a gated call's card decides its gate. */
  gates: IGateActions;
  /** What the no-model notice offers. */
  models: IModelActions;
}

/** A widget that shows one entry and can re-render when it changes. */
export abstract class EntryWidget<
  T extends ChatEntry = ChatEntry
> extends Panel {
  constructor(
    protected readonly context: IEntryContext,
    entry: T
  ) {
    super();
    this.addClass('jp-OpenFoal-entry');
    this.addClass(`jp-OpenFoal-entry-${entry.kind}`);
    this.node.dataset.entryId = entry.id;
  }

  /** Show the entry's current state. */
  abstract render(entry: T): void;
}

/** Create the widget for an entry. */
export function createEntryWidget(
  context: IEntryContext,
  entry: ChatEntry
): EntryWidget {
  let widget: EntryWidget<any>;
  switch (entry.kind) {
    case 'user':
      widget = new UserEntry(context, entry);
      break;
    case 'assistant':
      widget = new AssistantEntry(context, entry);
      break;
    case 'tool':
      widget = new ToolCard(context, entry);
      break;
    case 'error':
      widget = new ErrorEntry(context, entry);
      break;
    default:
      widget = new NoticeEntry(context, entry);
  }
  widget.render(entry);
  return widget;
}

class UserEntry extends EntryWidget<IUserEntry> {
  render(entry: IUserEntry): void {
    this.node.setAttribute('aria-label', this.context.trans.__('You'));
    this.node.textContent = entry.text;
  }
}

/** Agent text rendered as Markdown; re-rendered at most once per frame while streaming. */
class AssistantEntry extends EntryWidget<IAssistantEntry> {
  constructor(context: IEntryContext, entry: IAssistantEntry) {
    super(context, entry);
    this.node.setAttribute('aria-label', context.trans.__('OpenFoal'));
    this._renderer = context.rendermime.createRenderer('text/markdown');
    this.addWidget(this._renderer);
  }

  render(entry: IAssistantEntry): void {
    this._text = entry.text;
    this.toggleClass('jp-OpenFoal-streaming', entry.streaming);
    this.node.setAttribute('aria-busy', entry.streaming ? 'true' : 'false');
    if (!this._rendering) {
      void this._renderLoop();
    }
  }

  private async _renderLoop(): Promise<void> {
    this._rendering = true;
    try {
      while (this._rendered !== this._text && !this.isDisposed) {
        const text = this._text;
        // Untrusted: model output is sanitised like any untrusted Markdown.
        await this._renderer.renderModel(
          new MimeModel({ data: { 'text/markdown': text }, trusted: false })
        );
        this._rendered = text;
        this.node.dataset.rendered = String(text.length);
        await new Promise(resolve => requestAnimationFrame(resolve));
      }
    } finally {
      this._rendering = false;
    }
  }

  private _renderer: IRenderMime.IRenderer;
  private _text = '';
  private _rendered: string | null = null;
  private _rendering = false;
}

/** A tool call: name, arguments, status, duration, collapsible output, rich displays. */
class ToolCard extends EntryWidget<IToolEntry> {
  constructor(context: IEntryContext, entry: IToolEntry) {
    super(context, entry);
    this._expanded = context.expandTools;
    this._header = h('button', {
      class: 'jp-OpenFoal-toolHeader',
      type: 'button'
    });
    this._header.addEventListener('click', () => {
      this._expanded = !this._expanded;
      this.render(this._entry as IToolEntry);
    });
    this._body = h('div', { class: 'jp-OpenFoal-toolBody' });
    this.node.append(this._header, this._body);
    this._displays = new Panel();
    this._displays.addClass('jp-OpenFoal-toolDisplays');
    this.addWidget(this._displays);
  }

  render(entry: IToolEntry): void {
    this._entry = entry;
    const trans = this.context.trans;
    const status = statusLabel(trans, entry.status);
    this.node.dataset.status = entry.status;
    this.node.dataset.tool = entry.toolName;
    const caret = (this._expanded ? caretDownIcon : caretRightIcon).element({
      className: 'jp-OpenFoal-caret'
    });
    const duration =
      entry.durationMs !== undefined ? formatDuration(entry.durationMs) : '';
    this._header.replaceChildren(
      caret,
      h('span', { class: 'jp-OpenFoal-toolName' }, entry.toolName),
      h('span', { class: 'jp-OpenFoal-toolStatus' }, status),
      h('span', { class: 'jp-OpenFoal-toolDuration' }, duration),
      entry.runtimeMode
        ? h('span', { class: 'jp-OpenFoal-badge' }, entry.runtimeMode)
        : ''
    );
    this._header.setAttribute('aria-expanded', String(this._expanded));
    this._header.setAttribute(
      'aria-label',
      trans.__('Tool call %1: %2. Show details', entry.toolName, status)
    );
    this._renderGate(entry);
    this._body.hidden = !this._expanded;
    const parts: Node[] = [
      h('div', { class: 'jp-OpenFoal-toolLabel' }, trans.__('Arguments')),
      h(
        'pre',
        { class: 'jp-OpenFoal-toolArgs' },
        JSON.stringify(entry.args, null, 2)
      )
    ];
    if (entry.output) {
      parts.push(
        h('div', { class: 'jp-OpenFoal-toolLabel' }, trans.__('Output')),
        h('pre', { class: 'jp-OpenFoal-toolOutput' }, entry.output)
      );
    }
    if (entry.error?.code || entry.error?.message) {
      parts.push(
        h(
          'div',
          { class: 'jp-OpenFoal-toolError' },
          `${entry.error.code ?? ''} ${entry.error.message ?? ''}`.trim()
        )
      );
    }
    this._body.replaceChildren(...parts);
    if (entry.displays !== this._shownDisplays) {
      this._shownDisplays = entry.displays;
      void this._renderDisplays(entry.displays);
    }
  }

  private _renderGate(entry: IToolEntry): void {
    if (!entry.gate) {
      return;
    }
    if (!this._gate) {
      this._gate = new GateCard(this.context.gates, this.context.trans);
      this._header.after(this._gate.node);
    }
    this._gate.render(entry.gate);
  }

  private async _renderDisplays(displays: IDisplayBundle[]): Promise<void> {
    for (const widget of [...this._displays.widgets]) {
      widget.dispose();
    }
    const rendermime = this.context.rendermime;
    for (const bundle of displays) {
      const mimeType = rendermime.preferredMimeType(bundle.data as any, 'any');
      if (!mimeType) {
        continue;
      }
      const renderer = rendermime.createRenderer(mimeType);
      renderer.addClass('jp-OpenFoal-display');
      this._displays.addWidget(renderer);
      await renderer.renderModel(
        new MimeModel({
          data: bundle.data as any,
          metadata: (bundle.metadata ?? {}) as any,
          trusted: false
        })
      );
    }
  }

  private _entry: IToolEntry | null = null;
  private _gate: GateCard | null = null;
  private _expanded: boolean;
  private _header: HTMLButtonElement;
  private _body: HTMLDivElement;
  private _displays: Panel;
  private _shownDisplays: IDisplayBundle[] | null = null;
}

class ErrorEntry extends EntryWidget<IErrorEntry> {
  render(entry: IErrorEntry): void {
    const trans = this.context.trans;
    if (isNoModel(entry)) {
      // Not a failure to show in red: the first run on a fresh install.
      this.node.classList.add('jp-OpenFoal-noModel');
      this.node.setAttribute('role', 'status');
      this.node.replaceChildren(
        ...noModelNodes(trans, entry, this.context.models)
      );
      return;
    }
    this.node.setAttribute('role', 'alert');
    this.node.replaceChildren(
      h('span', { class: 'jp-OpenFoal-errorCode' }, entry.code),
      h('span', { class: 'jp-OpenFoal-errorMessage' }, entry.message),
      entry.traceId
        ? h(
            'span',
            { class: 'jp-OpenFoal-errorTrace' },
            trans.__('trace %1', entry.traceId)
          )
        : ''
    );
  }
}

class NoticeEntry extends EntryWidget<INoticeEntry> {
  render(entry: INoticeEntry): void {
    const trans = this.context.trans;
    const labels: Record<string, string> = {
      stopped: trans.__('Stopped'),
      compaction: trans.__('Older context was compacted')
    };
    this.node.textContent = labels[entry.text] ?? entry.text;
  }
}

/** A readable tool status. */
function statusLabel(
  trans: TranslationBundle,
  status: IToolEntry['status']
): string {
  const labels: Record<string, string> = {
    running: trans.__('running'),
    waiting_gate: trans.__('waiting for approval'),
    success: trans.__('success'),
    failed: trans.__('failed'),
    denied: trans.__('denied'),
    rejected: trans.__('rejected'),
    timeout: trans.__('timed out')
  };
  return labels[status] ?? status;
}

/** "850 ms" or "2.4 s". */
export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}
