/**
 * The Sessions panel: search and page through `sessions.list`, open one in the chat, delete.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { refreshIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { errorBody } from '../gates';
import { IEventFrame, ISession } from '../protocol';
import { IOpenFoalClient } from '../tokens';
import { h, relativeTime } from '../widgets/dom';
import { iconButton } from '../widgets/header';

/** One page of `sessions.list`. */
interface ISessionsPage {
  items: ISession[];
  nextCursor?: string | null;
}

/** A failure as the panel shows it: code, message and trace id. */
export function errorText(trans: TranslationBundle, reason: unknown): string {
  const error = errorBody(reason);
  return `${error.code}: ${error.message}${
    error.traceId ? ` (${trans.__('trace %1', error.traceId)})` : ''
  }`;
}

/** Lists the user's sessions a page at a time; a failure keeps the rows on screen. */
export class SessionsPanel extends Widget {
  constructor(options: SessionsPanel.IOptions) {
    super();
    this._client = options.client;
    this._trans = options.trans;
    this._openSession = options.openSession;
    this._confirm =
      options.confirm ?? (session => this._confirmDialog(session));
    this._pageSize = options.pageSize ?? 25;
    const trans = this._trans;
    this.addClass('jp-OpenFoal-sessionsPanel');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', trans.__('OpenFoal sessions'));

    this._search = h('input', {
      type: 'search',
      class: 'jp-OpenFoal-sessionsSearch',
      placeholder: trans.__('Search title and messages'),
      'aria-label': trans.__('Search sessions')
    });
    this._search.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        event.preventDefault();
        this._startSearch();
      }
    });
    this._search.addEventListener('input', () => {
      window.clearTimeout(this._debounce);
      this._debounce = window.setTimeout(() => this._startSearch(), 300);
    });
    const refresh = iconButton(refreshIcon, trans.__('Refresh'), 'refresh');
    refresh.addEventListener('click', () => void this.refresh());
    this._status = h('span', {
      class: 'jp-OpenFoal-consoleStatus',
      role: 'status'
    });
    this._prev = h(
      'button',
      {
        type: 'button',
        class: 'jp-OpenFoal-consoleButton',
        'data-action': 'prev'
      },
      trans.__('Previous page')
    );
    this._prev.addEventListener('click', () => void this._page(-1));
    this._next = h(
      'button',
      {
        type: 'button',
        class: 'jp-OpenFoal-consoleButton',
        'data-action': 'next'
      },
      trans.__('Next page')
    );
    this._next.addEventListener('click', () => void this._page(1));
    this._pageLabel = h('span', { class: 'jp-OpenFoal-sessionsPage' });
    this._body = h('tbody');
    const head = h('tr');
    for (const label of [
      trans.__('Session'),
      trans.__('Status'),
      trans.__('Runtime mode'),
      trans.__('Sync state'),
      trans.__('Last activity'),
      trans.__('Actions')
    ]) {
      head.append(h('th', { scope: 'col' }, label));
    }
    const table = h(
      'table',
      { class: 'jp-OpenFoal-consoleTable', 'aria-label': trans.__('Sessions') },
      h('thead', {}, head),
      this._body
    );
    this._empty = h(
      'p',
      { class: 'jp-OpenFoal-consoleEmpty', hidden: true },
      trans.__('No sessions to show.')
    );
    this.node.append(
      h(
        'div',
        { class: 'jp-OpenFoal-consoleToolbar' },
        this._search,
        refresh,
        this._status
      ),
      table,
      this._empty,
      h(
        'div',
        { class: 'jp-OpenFoal-consoleToolbar' },
        this._prev,
        this._pageLabel,
        this._next
      )
    );
    this._updatePaging();
    this._client.eventReceived.connect(this._onEvent, this);
  }

  /** The sessions on screen. */
  get sessions(): readonly ISession[] {
    return this._items;
  }

  /** Reload the current page (the first one after a new search). */
  async refresh(): Promise<void> {
    await this._load(this._cursors[this._cursors.length - 1] ?? null);
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    window.clearTimeout(this._debounce);
    this._client.eventReceived.disconnect(this._onEvent, this);
    super.dispose();
  }

  private _startSearch(): void {
    window.clearTimeout(this._debounce);
    this._query = this._search.value.trim();
    this._cursors = [null];
    void this.refresh();
  }

  private async _page(step: 1 | -1): Promise<void> {
    if (step === 1) {
      if (!this._nextCursor) {
        return;
      }
      this._cursors.push(this._nextCursor);
    } else if (this._cursors.length > 1) {
      this._cursors.pop();
    }
    await this.refresh();
  }

  private async _load(cursor: string | null): Promise<void> {
    const ticket = ++this._ticket;
    this._status.textContent = this._trans.__('Loading…');
    const params: Record<string, unknown> = { limit: this._pageSize };
    if (cursor) {
      params.cursor = cursor;
    }
    if (this._query) {
      params.query = this._query;
    }
    try {
      await this._client.connect();
      const page = await this._client.request<ISessionsPage>(
        'sessions.list',
        params
      );
      if (ticket !== this._ticket) {
        return; // a newer load is under way
      }
      this._items = page.items;
      this._nextCursor = page.nextCursor ?? null;
      this._render();
      this._status.textContent = '';
    } catch (reason) {
      if (ticket === this._ticket) {
        // the rows stay as they were: the panel never blanks
        this._status.textContent = errorText(this._trans, reason);
        this._status.dataset.error = 'true';
      }
      return;
    }
    delete this._status.dataset.error;
    this._updatePaging();
  }

  private _render(): void {
    this._body.replaceChildren(...this._items.map(s => this._row(s)));
    this._empty.hidden = this._items.length > 0;
  }

  private _row(session: ISession): HTMLTableRowElement {
    const trans = this._trans;
    const title = session.title || session.preview || session.id;
    const open = h(
      'button',
      {
        type: 'button',
        class: 'jp-OpenFoal-consoleButton',
        'data-action': 'open',
        'aria-label': trans.__('Open %1 in the chat', title)
      },
      trans.__('Open')
    );
    open.addEventListener('click', () => this._openSession(session.id));
    const remove = h(
      'button',
      {
        type: 'button',
        class: 'jp-OpenFoal-consoleButton jp-mod-warn',
        'data-action': 'delete',
        'aria-label': trans.__('Delete %1', title)
      },
      trans.__('Delete')
    );
    remove.addEventListener('click', () => void this._delete(session));
    const updated = session.updatedAt ? new Date(session.updatedAt) : null;
    return h(
      'tr',
      { 'data-session-id': session.id },
      h(
        'td',
        {},
        h('div', { class: 'jp-OpenFoal-sessionsTitle' }, title),
        session.preview && session.preview !== title
          ? h('div', { class: 'jp-OpenFoal-sessionsPreview' }, session.preview)
          : null
      ),
      h('td', { 'data-col': 'status' }, session.status),
      h('td', { 'data-col': 'runtimeMode' }, session.runtimeMode),
      h('td', { 'data-col': 'syncState' }, session.syncState),
      h(
        'td',
        { 'data-col': 'updatedAt', title: updated?.toLocaleString() ?? '' },
        relativeTime(session.updatedAt)
      ),
      h('td', { class: 'jp-OpenFoal-consoleActions' }, open, remove)
    );
  }

  private async _delete(session: ISession): Promise<void> {
    if (!(await this._confirm(session))) {
      return;
    }
    this._status.textContent = this._trans.__('Deleting…');
    try {
      await this._client.request('sessions.delete', { sessionId: session.id });
    } catch (reason) {
      this._status.textContent = errorText(this._trans, reason);
      this._status.dataset.error = 'true';
      return;
    }
    await this.refresh();
  }

  private async _confirmDialog(session: ISession): Promise<boolean> {
    const trans = this._trans;
    const result = await showDialog({
      title: trans.__('Delete session?'),
      body: trans.__(
        'Delete "%1" and its transcript? This cannot be undone.',
        session.title || session.preview || session.id
      ),
      buttons: [
        Dialog.cancelButton({ label: trans.__('Cancel') }),
        Dialog.warnButton({ label: trans.__('Delete') })
      ]
    });
    return result.button.accept;
  }

  private _updatePaging(): void {
    this._prev.disabled = this._cursors.length <= 1;
    this._next.disabled = !this._nextCursor;
    this._pageLabel.textContent = this._trans.__(
      'Page %1',
      String(this._cursors.length)
    );
  }

  private _onEvent(_: IOpenFoalClient, frame: IEventFrame): void {
    if (frame.event !== 'session.updated') {
      return;
    }
    const session = frame.payload?.session as ISession | undefined;
    const index = this._items.findIndex(s => s.id === session?.id);
    if (session && index >= 0) {
      this._items = this._items.map((s, i) => (i === index ? session : s));
      this._body.children[index]?.replaceWith(this._row(session));
    }
  }

  private readonly _client: IOpenFoalClient;
  private readonly _trans: TranslationBundle;
  private readonly _openSession: (sessionId: string) => void;
  private readonly _confirm: (session: ISession) => Promise<boolean>;
  private readonly _pageSize: number;
  private readonly _search: HTMLInputElement;
  private readonly _status: HTMLElement;
  private readonly _prev: HTMLButtonElement;
  private readonly _next: HTMLButtonElement;
  private readonly _pageLabel: HTMLElement;
  private readonly _body: HTMLTableSectionElement;
  private readonly _empty: HTMLElement;
  private _items: ISession[] = [];
  private _query = '';
  /** The cursor of each page shown so far (`null`: the first page). */
  private _cursors: (string | null)[] = [null];
  private _nextCursor: string | null = null;
  private _ticket = 0;
  private _debounce = 0;
}

/** Options of {@link SessionsPanel}. */
export namespace SessionsPanel {
  /** What the panel needs. */
  export interface IOptions {
    client: IOpenFoalClient;
    trans: TranslationBundle;
    /** Show a session in the chat. */
    openSession: (sessionId: string) => void;
    /** Ask before deleting (a JupyterLab dialog unless given). */
    confirm?: (session: ISession) => Promise<boolean>;
    /** Sessions per page (default 25). */
    pageSize?: number;
  }
}
