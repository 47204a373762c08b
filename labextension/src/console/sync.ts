/**
 * The Sync panel: where this server's sync to the cloud instance stands (state, lag, pending
 * rows), dead letters with retry and discard, and conflicts with their three resolutions.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { refreshIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { errorBody } from '../gates';
import type {
  IDeadLetter,
  ISyncConflictItem,
  ISyncStatusResult
} from '../protocol.generated';
import { IEventFrame } from '../protocol';
import { IOpenFoalClient } from '../tokens';
import { h } from '../widgets/dom';
import { iconButton } from '../widgets/header';

/** A resolution of `sync.resolve`. */
export type Resolution = 'keep_local' | 'keep_cloud' | 'fork';

/** Shows `sync.status` and acts on it; refreshes on `sync.state_changed`. */
export class SyncPanel extends Widget {
  constructor(options: SyncPanel.IOptions) {
    super();
    this._client = options.client;
    this._trans = options.trans;
    const trans = this._trans;
    this.addClass('jp-OpenFoal-sync');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', trans.__('OpenFoal sync'));
    const refresh = iconButton(refreshIcon, trans.__('Refresh'), 'refresh');
    refresh.addEventListener('click', () => void this.refresh());
    this._pause = h('button', {
      type: 'button',
      class: 'jp-OpenFoal-syncPause jp-mod-styled'
    });
    this._pause.addEventListener('click', () => void this._togglePause());
    this._status = h('span', {
      class: 'jp-OpenFoal-syncStatus',
      role: 'status'
    });
    this._summary = h('dl', { class: 'jp-OpenFoal-syncSummary' });
    this._dead = h('div', {
      class: 'jp-OpenFoal-syncDead',
      role: 'list',
      'aria-label': trans.__('Dead letters')
    });
    this._conflicts = h('div', {
      class: 'jp-OpenFoal-syncConflicts',
      role: 'list',
      'aria-label': trans.__('Conflicts')
    });
    this.node.append(
      h(
        'div',
        { class: 'jp-OpenFoal-approvalsToolbar' },
        refresh,
        this._pause,
        this._status
      ),
      this._summary,
      h('h3', {}, trans.__('Dead letters')),
      this._dead,
      h('h3', {}, trans.__('Conflicts')),
      this._conflicts
    );
    this._client.eventReceived.connect(this._onEvent, this);
  }

  /** The last status shown. */
  get current(): ISyncStatusResult | null {
    return this._current;
  }

  /** Reload from `sync.status`. */
  async refresh(): Promise<void> {
    await this._call(() => this._client.request('sync.status', {}));
  }

  /** Put dead letters back in the queue (`ids` omitted: all). */
  async retry(ids?: number[]): Promise<void> {
    await this._call(() =>
      this._client.request('sync.retry', ids ? { ids } : {})
    );
  }

  /** Drop dead letters from the outbox (the local rows stay). */
  async discard(ids?: number[]): Promise<void> {
    await this._call(() =>
      this._client.request('sync.discard', ids ? { ids } : {})
    );
  }

  /** End a session's conflict. */
  async resolve(sessionId: string, resolution: Resolution): Promise<void> {
    try {
      await this._client.request('sync.resolve', { sessionId, resolution });
    } catch (reason) {
      this._showError(reason);
      return;
    }
    await this.refresh();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._client.eventReceived.disconnect(this._onEvent, this);
    super.dispose();
  }

  private async _togglePause(): Promise<void> {
    const paused = this._current?.state === 'paused';
    await this._call(() =>
      this._client.request(paused ? 'sync.resume' : 'sync.pause', {})
    );
  }

  private async _call(work: () => Promise<unknown>): Promise<void> {
    this._status.textContent = this._trans.__('Loading…');
    try {
      await this._client.connect();
      this._render((await work()) as ISyncStatusResult);
      this._status.textContent = '';
    } catch (reason) {
      this._showError(reason);
    }
  }

  private _showError(reason: unknown): void {
    const error = errorBody(reason);
    this._status.textContent = `${error.code}: ${error.message}`;
  }

  private _onEvent(_: IOpenFoalClient, frame: IEventFrame): void {
    if (frame.event === 'sync.state_changed') {
      void this.refresh();
    }
  }

  private _render(status: ISyncStatusResult): void {
    const trans = this._trans;
    this._current = status;
    this.node.dataset.state = status.state;
    this._pause.textContent =
      status.state === 'paused' ? trans.__('Resume') : trans.__('Pause');
    this._pause.disabled =
      status.state === 'disabled' || status.state === 'cloud';
    const lag =
      status.lagSeconds === null || status.lagSeconds === undefined
        ? trans.__('none')
        : trans.__('%1 s', Math.round(status.lagSeconds));
    const facts: [string, string, string][] = [
      ['state', trans.__('State'), status.state],
      ['pending', trans.__('Pending rows'), String(status.pending)],
      ['lag', trans.__('Lag'), lag],
      [
        'last',
        trans.__('Last sync'),
        status.lastSyncAt
          ? new Date(status.lastSyncAt).toLocaleString()
          : trans.__('never')
      ],
      ['cloud', trans.__('Cloud'), status.cloudUrl ?? trans.__('not set')]
    ];
    if (status.lastError) {
      facts.push(['error', trans.__('Last error'), status.lastError]);
    }
    this._summary.replaceChildren(
      ...facts.flatMap(([key, label, value]) => [
        h('dt', {}, label),
        h('dd', { 'data-fact': key }, value)
      ])
    );
    const dead = status.deadLetters ?? [];
    this._dead.replaceChildren(
      ...(dead.length
        ? dead.map(letter => this._deadItem(letter))
        : [h('p', { class: 'jp-OpenFoal-approvalsEmpty' }, trans.__('None.'))])
    );
    const conflicts = status.conflicts ?? [];
    this._conflicts.replaceChildren(
      ...(conflicts.length
        ? conflicts.map(item => this._conflictItem(item))
        : [h('p', { class: 'jp-OpenFoal-approvalsEmpty' }, trans.__('None.'))])
    );
  }

  private _deadItem(letter: IDeadLetter): HTMLElement {
    const trans = this._trans;
    const retry = h(
      'button',
      {
        type: 'button',
        class: 'jp-OpenFoal-syncRetry jp-mod-styled jp-mod-accept'
      },
      trans.__('Retry')
    );
    retry.addEventListener('click', () => void this.retry([letter.id]));
    const discard = h(
      'button',
      {
        type: 'button',
        class: 'jp-OpenFoal-syncDiscard jp-mod-styled jp-mod-warn'
      },
      trans.__('Discard')
    );
    discard.addEventListener('click', () => void this.discard([letter.id]));
    return h(
      'div',
      {
        class: 'jp-OpenFoal-approvalsItem',
        role: 'listitem',
        'data-id': String(letter.id)
      },
      h(
        'div',
        {},
        trans.__(
          '%1 rows of %2, refused %3 times',
          letter.rows,
          letter.kind,
          letter.attempts
        )
      ),
      h('pre', { class: 'jp-OpenFoal-syncError' }, letter.error ?? ''),
      retry,
      discard
    );
  }

  private _conflictItem(item: ISyncConflictItem): HTMLElement {
    const trans = this._trans;
    const choices: [Resolution, string][] = [
      ['keep_local', trans.__('Keep local')],
      ['keep_cloud', trans.__('Keep cloud')],
      ['fork', trans.__('Fork')]
    ];
    const buttons = choices.map(([resolution, label]) => {
      const button = h(
        'button',
        {
          type: 'button',
          class: 'jp-OpenFoal-syncResolve jp-mod-styled',
          'data-resolution': resolution
        },
        label
      );
      button.addEventListener(
        'click',
        () => void this.resolve(item.sessionId, resolution)
      );
      return button;
    });
    return h(
      'div',
      {
        class: 'jp-OpenFoal-approvalsItem',
        role: 'listitem',
        'data-session-id': item.sessionId
      },
      h('div', {}, trans.__('Session %1', item.sessionId)),
      ...buttons
    );
  }

  private readonly _client: IOpenFoalClient;
  private readonly _trans: TranslationBundle;
  private readonly _pause: HTMLButtonElement;
  private readonly _status: HTMLElement;
  private readonly _summary: HTMLElement;
  private readonly _dead: HTMLElement;
  private readonly _conflicts: HTMLElement;
  private _current: ISyncStatusResult | null = null;
}

/** Options of {@link SyncPanel}. */
export namespace SyncPanel {
  /** What the panel needs. */
  export interface IOptions {
    client: IOpenFoalClient;
    trans: TranslationBundle;
  }
}
