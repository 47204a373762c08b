/**
 * The Audit panel: `audit.query` with filters and server-side paging; a run opens its Replay.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { refreshIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { IAuditEntry, IAuditQueryResult } from '../protocol.generated';
import { IOpenFoalClient } from '../tokens';
import { h } from '../widgets/dom';
import { iconButton } from '../widgets/header';
import {
  ServerLine,
  ensureConnected,
  errorLine,
  localTime,
  redactedBlock
} from './inspect';

/** The text filters of the form, by `audit.query` param. */
const TEXT_FILTERS = [
  'actor',
  'action',
  'sessionId',
  'runId',
  'traceId'
] as const;

/** The filters as `audit.query` takes them (times as ISO strings). */
export type AuditFilters = Partial<
  Record<(typeof TEXT_FILTERS)[number] | 'from' | 'to', string>
>;

/**
 * Read the form's filters: trimmed text, local times to ISO; a clear message when a time
 * does not parse or the range is inverted (nothing is sent then).
 */
export function readFilters(
  raw: Record<string, string>,
  trans: TranslationBundle
): { filters: AuditFilters } | { error: string } {
  const filters: AuditFilters = {};
  for (const key of TEXT_FILTERS) {
    const value = (raw[key] ?? '').trim();
    if (value) {
      filters[key] = value;
    }
  }
  for (const key of ['from', 'to'] as const) {
    const value = (raw[key] ?? '').trim();
    if (!value) {
      continue;
    }
    const t = Date.parse(value);
    if (Number.isNaN(t)) {
      return { error: trans.__('"%1" is not a date and time.', value) };
    }
    filters[key] = new Date(t).toISOString();
  }
  if (filters.from && filters.to && filters.from > filters.to) {
    return {
      error: trans.__('The range is inverted: "From" is after "To".')
    };
  }
  return { filters };
}

/** Lists audit entries page by page; keeps the last good page on screen on errors. */
export class AuditPanel extends Widget {
  constructor(options: AuditPanel.IOptions) {
    super();
    this._client = options.client;
    this._trans = options.trans;
    this._openRun = options.openRun;
    const trans = this._trans;
    this.addClass('jp-OpenFoal-audit');
    this.addClass('jp-OpenFoal-console');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', trans.__('OpenFoal audit'));

    this._form = h('form', {
      class: 'jp-OpenFoal-consoleFilters',
      'aria-label': trans.__('Audit filters')
    });
    const fields: [string, string, string][] = [
      ['from', trans.__('From'), 'datetime-local'],
      ['to', trans.__('To'), 'datetime-local'],
      ['actor', trans.__('Actor'), 'text'],
      ['action', trans.__('Action'), 'text'],
      ['sessionId', trans.__('Session'), 'text'],
      ['runId', trans.__('Run'), 'text'],
      ['traceId', trans.__('Trace id'), 'text']
    ];
    for (const [name, label, type] of fields) {
      const input = h('input', {
        name,
        type,
        step: type === 'datetime-local' ? '1' : undefined,
        class: 'jp-OpenFoal-consoleInput',
        'data-filter': name
      });
      this._inputs.set(name, input);
      this._form.append(h('label', {}, label, input));
    }
    const apply = h(
      'button',
      { type: 'submit', class: 'jp-mod-styled jp-mod-accept' },
      trans.__('Apply')
    );
    const clear = h(
      'button',
      { type: 'button', class: 'jp-mod-styled' },
      trans.__('Clear')
    );
    clear.addEventListener('click', () => {
      this._inputs.forEach(input => (input.value = ''));
      void this.apply();
    });
    const refresh = iconButton(refreshIcon, trans.__('Refresh'), 'refresh');
    refresh.addEventListener('click', () => void this._load());
    this._form.append(apply, clear, refresh);
    this._form.addEventListener('submit', event => {
      event.preventDefault();
      void this.apply();
    });

    this._status = h('div', {
      class: 'jp-OpenFoal-consoleStatus',
      role: 'status',
      'aria-live': 'polite'
    });
    this._server = new ServerLine(this._client, trans);
    this._body = h('tbody', {});
    this._table = h(
      'table',
      {
        class: 'jp-OpenFoal-auditTable',
        'aria-label': trans.__('Audit entries')
      },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...[
            trans.__('Time'),
            trans.__('Actor'),
            trans.__('Action'),
            trans.__('Resource'),
            trans.__('Session'),
            trans.__('Run'),
            trans.__('Trace'),
            trans.__('Detail')
          ].map(name => h('th', { scope: 'col' }, name))
        )
      ),
      this._body
    );
    this._prev = h(
      'button',
      { type: 'button', class: 'jp-mod-styled', 'data-page': 'prev' },
      trans.__('Newer')
    );
    this._next = h(
      'button',
      { type: 'button', class: 'jp-mod-styled', 'data-page': 'next' },
      trans.__('Older')
    );
    this._pageLabel = h('span', { class: 'jp-OpenFoal-consolePage' });
    this._prev.addEventListener('click', () => {
      if (this._cursors.length > 1) {
        this._cursors.pop();
        void this._load();
      }
    });
    this._next.addEventListener('click', () => {
      if (this._nextCursor) {
        this._cursors.push(this._nextCursor);
        void this._load();
      }
    });
    this.node.append(
      this._form,
      this._server.node,
      this._status,
      h('div', { class: 'jp-OpenFoal-consoleScroll' }, this._table),
      h(
        'div',
        { class: 'jp-OpenFoal-consolePager' },
        this._prev,
        this._pageLabel,
        this._next
      )
    );
    this._updatePager();
  }

  /** The filters of the page on screen. */
  get filters(): AuditFilters {
    return { ...this._filters };
  }

  /** Entries per page. */
  pageSize = 50;

  /** Read the form and load the first page of its results. */
  async apply(): Promise<void> {
    const raw: Record<string, string> = {};
    this._inputs.forEach((input, name) => (raw[name] = input.value));
    const read = readFilters(raw, this._trans);
    if ('error' in read) {
      this._showStatus(read.error, 'invalid');
      return;
    }
    this._filters = read.filters;
    this._cursors = [null];
    await this._load();
  }

  /** Set filters (as `audit.query` params) and load them. */
  async setFilters(filters: AuditFilters): Promise<void> {
    for (const [name, input] of this._inputs) {
      const value = filters[name as keyof AuditFilters] ?? '';
      input.value =
        (name === 'from' || name === 'to') && value
          ? toLocalInput(value)
          : value;
    }
    await this.apply();
  }

  dispose(): void {
    if (!this.isDisposed) {
      this._server.dispose();
    }
    super.dispose();
  }

  private async _load(): Promise<void> {
    const ticket = ++this._ticket;
    this._showStatus(this._trans.__('Loading…'), 'loading');
    const cursor = this._cursors[this._cursors.length - 1];
    try {
      await ensureConnected(this._client, this._trans);
      const page = await this._client.request<IAuditQueryResult>(
        'audit.query',
        {
          ...this._filters,
          limit: this.pageSize,
          ...(cursor ? { cursor } : {})
        }
      );
      if (ticket !== this._ticket) {
        return; // a newer load is on its way
      }
      this._nextCursor = page.nextCursor ?? null;
      this._render(page.items);
      this._showStatus(
        page.items.length
          ? this._trans.__('%1 entries on this page', page.items.length)
          : this._trans.__('No audit entries match.'),
        'ready'
      );
    } catch (reason) {
      if (ticket === this._ticket) {
        // The previous rows stay; the error says what went wrong and where to look.
        this._showStatus(errorLine(reason, this._trans), 'error');
      }
    }
    this._updatePager();
  }

  private _render(items: IAuditEntry[]): void {
    this._body.replaceChildren(...items.map(entry => this._row(entry)));
  }

  private _row(entry: IAuditEntry): HTMLElement {
    const trans = this._trans;
    const run = entry.runId
      ? h(
          'button',
          {
            type: 'button',
            class: 'jp-OpenFoal-linkButton',
            'data-run': entry.runId,
            'aria-label': trans.__('Replay run %1', entry.runId)
          },
          entry.runId
        )
      : '';
    if (run && entry.runId) {
      const runId = entry.runId;
      run.addEventListener('click', () => this._openRun(runId));
    }
    const filterButton = (key: 'sessionId' | 'traceId', value: string) => {
      const button = h(
        'button',
        {
          type: 'button',
          class: 'jp-OpenFoal-linkButton',
          'aria-label': trans.__('Filter by %1 %2', key, value)
        },
        value
      );
      button.addEventListener('click', () => {
        void this.setFilters({ ...this._filters, [key]: value });
      });
      return button;
    };
    return h(
      'tr',
      { 'data-entry': entry.id, 'data-action': entry.action },
      h('td', { class: 'jp-OpenFoal-auditTime' }, localTime(entry.at)),
      h('td', {}, entry.actor),
      h('td', {}, entry.action),
      h('td', {}, entry.resource),
      h(
        'td',
        {},
        entry.sessionId ? filterButton('sessionId', entry.sessionId) : ''
      ),
      h('td', {}, run),
      h('td', {}, filterButton('traceId', entry.traceId)),
      h('td', {}, redactedBlock(entry.detail ?? {}, 'jp-OpenFoal-auditDetail'))
    );
  }

  private _showStatus(text: string, state: string): void {
    this._status.textContent = text;
    this._status.dataset.state = state;
  }

  private _updatePager(): void {
    this._prev.disabled = this._cursors.length <= 1;
    this._next.disabled = !this._nextCursor;
    this._pageLabel.textContent = this._trans.__(
      'Page %1',
      this._cursors.length
    );
  }

  private readonly _client: IOpenFoalClient;
  private readonly _trans: TranslationBundle;
  private readonly _openRun: (runId: string) => void;
  private readonly _form: HTMLFormElement;
  private readonly _inputs = new Map<string, HTMLInputElement>();
  private readonly _status: HTMLElement;
  private readonly _server: ServerLine;
  private readonly _table: HTMLTableElement;
  private readonly _body: HTMLTableSectionElement;
  private readonly _prev: HTMLButtonElement;
  private readonly _next: HTMLButtonElement;
  private readonly _pageLabel: HTMLElement;
  private _filters: AuditFilters = {};
  private _cursors: (string | null)[] = [null];
  private _nextCursor: string | null = null;
  private _ticket = 0;
}

/** An ISO time as a `datetime-local` value (local time, seconds). */
function toLocalInput(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) {
    return iso;
  }
  const local = new Date(d.getTime() - d.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 19);
}

/** Options of {@link AuditPanel}. */
export namespace AuditPanel {
  /** What the panel needs. */
  export interface IOptions {
    client: IOpenFoalClient;
    trans: TranslationBundle;
    /** Open the Replay of a run. */
    openRun: (runId: string) => void;
  }
}
