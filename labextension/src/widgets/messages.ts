/**
 * The scrolling list of chat entries, kept in step with the model.
 */
import { Panel } from '@lumino/widgets';

import { ChatModel } from '../model';
import { h } from './dom';
import { EntryWidget, IEntryContext, createEntryWidget } from './entries';

/** Shows the model's entries and follows the bottom while the user is there. */
export class MessageList extends Panel {
  constructor(
    private readonly _model: ChatModel,
    private readonly _context: IEntryContext
  ) {
    super();
    this.addClass('jp-OpenFoal-messages');
    this.node.setAttribute('role', 'log');
    this.node.setAttribute('aria-live', 'polite');
    this.node.setAttribute('aria-label', _context.trans.__('Conversation'));
    this.node.tabIndex = 0;
    this._empty = h(
      'div',
      { class: 'jp-OpenFoal-empty' },
      h(
        'p',
        {},
        _context.trans.__(
          'Ask OpenFoal to explore data, run code or edit files.'
        )
      ),
      h(
        'p',
        {},
        _context.trans.__(
          'Enter sends, Shift+Enter adds a line, Escape stops. Commands: /new, /reset, /compact.'
        )
      )
    );
    this.node.append(this._empty);
    // Follow the bottom while the user is there, also when Markdown renders late.
    this.node.addEventListener('scroll', () => {
      this._stick = this._atBottom();
    });
    this._observer = new MutationObserver(() => {
      if (this._stick) {
        this.node.scrollTop = this.node.scrollHeight;
      }
    });
    this._observer.observe(this.node, {
      childList: true,
      subtree: true,
      characterData: true
    });
    _model.entriesChanged.connect(this._onChange, this);
    this._onChange(_model, { type: 'reset', added: [], updated: [] });
  }

  /** The context expansion setting, applied to cards created from now on. */
  set expandTools(value: boolean) {
    this._context.expandTools = value;
  }

  dispose(): void {
    this._observer.disconnect();
    super.dispose();
  }

  private _onChange(_: ChatModel, change: ChatModel.IEntriesChange): void {
    const entries = this._model.entries;
    if (change.type === 'reset') {
      for (const widget of [...this.widgets]) {
        widget.dispose();
      }
      entries.forEach(entry =>
        this.addWidget(createEntryWidget(this._context, entry))
      );
    } else {
      for (const index of change.updated) {
        const widget = this.widgets[index] as EntryWidget | undefined;
        widget?.render(entries[index] as any);
      }
      for (const index of change.added) {
        if (index >= this.widgets.length) {
          this.addWidget(createEntryWidget(this._context, entries[index]));
        }
      }
    }
    this._empty.hidden = entries.length > 0;
    if (change.type === 'reset') {
      this._stick = true;
      this.node.scrollTop = this.node.scrollHeight;
    }
  }

  private _atBottom(): boolean {
    const node = this.node;
    return node.scrollHeight - node.scrollTop - node.clientHeight < 40;
  }

  private _empty: HTMLElement;
  private _stick = true;
  private _observer: MutationObserver;
}
