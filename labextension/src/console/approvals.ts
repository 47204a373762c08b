/**
 * The Approvals panel: gates across the user's sessions, filtered by status, decided in place.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { refreshIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import {
  GateDecision,
  GateStatus,
  IGateItem,
  allowToolForSession,
  errorBody,
  listGates,
  resolveGate
} from '../gates';
import { IEventFrame } from '../protocol';
import { IOpenFoalClient } from '../tokens';
import { h } from '../widgets/dom';
import { GateCard, IGateActions } from '../widgets/gatecard';
import { iconButton } from '../widgets/header';

/** The status filter: one status, or every gate (`''`). */
export type GateFilter = GateStatus | '';

/** Lists gates from `policy-gate.list` and follows `policy-gate.*` events live. */
export class ApprovalsPanel extends Widget implements IGateActions {
  constructor(options: ApprovalsPanel.IOptions) {
    super();
    this._client = options.client;
    this._trans = options.trans;
    const trans = this._trans;
    this.addClass('jp-OpenFoal-approvals');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', trans.__('OpenFoal approvals'));
    this._filterSelect = h('select', {
      class: 'jp-OpenFoal-approvalsFilter',
      'aria-label': trans.__('Show gates with status')
    });
    const choices: [GateFilter, string][] = [
      ['pending', trans.__('Pending')],
      ['approved', trans.__('Approved')],
      ['rejected', trans.__('Rejected')],
      ['expired', trans.__('Expired')],
      ['', trans.__('All')]
    ];
    for (const [value, label] of choices) {
      this._filterSelect.append(h('option', { value }, label));
    }
    this._filterSelect.addEventListener('change', () => {
      this._filter = this._filterSelect.value as GateFilter;
      void this.refresh();
    });
    const refresh = iconButton(refreshIcon, trans.__('Refresh'), 'refresh');
    refresh.addEventListener('click', () => void this.refresh());
    this._status = h('span', {
      class: 'jp-OpenFoal-approvalsStatus',
      role: 'status'
    });
    this._list = h('div', {
      class: 'jp-OpenFoal-approvalsList',
      role: 'list',
      'aria-label': trans.__('Gates')
    });
    this.node.append(
      h(
        'div',
        { class: 'jp-OpenFoal-approvalsToolbar' },
        h('label', {}, trans.__('Status'), this._filterSelect),
        refresh,
        this._status
      ),
      this._list
    );
    this._client.eventReceived.connect(this._onEvent, this);
    this._client.resumed.connect(this._onResumed, this);
  }

  /** The status shown. */
  get filter(): GateFilter {
    return this._filter;
  }
  set filter(value: GateFilter) {
    this._filter = value;
    this._filterSelect.value = value;
    void this.refresh();
  }

  /** Reload the list from `policy-gate.list`. */
  async refresh(): Promise<void> {
    const filter = this._filter;
    this._status.textContent = this._trans.__('Loading…');
    try {
      await this._client.connect();
      const gates = await listGates(this._client, { status: filter });
      if (filter !== this._filter) {
        return; // a newer filter is loading
      }
      this._cards.clear();
      this._list.replaceChildren();
      // Oldest first, so the next gate to decide is on top.
      for (const gate of gates.reverse()) {
        this._show(gate);
      }
      this._status.textContent = '';
      this._updateEmpty();
    } catch (reason) {
      const error = errorBody(reason);
      this._status.textContent = `${error.code}: ${error.message}${
        error.traceId ? ` (${this._trans.__('trace %1', error.traceId)})` : ''
      }`;
    }
  }

  /** Decide a gate from its card. */
  async resolve(
    gate: IGateItem,
    decision: GateDecision,
    reason: string,
    idempotencyKey: string
  ): Promise<IGateItem> {
    const resolved = await resolveGate(this._client, {
      gateId: gate.gateId,
      decision,
      reason,
      idempotencyKey
    });
    this._show(resolved);
    return resolved;
  }

  /** Allow the gate's tool for the rest of its session, then approve the gate. */
  async allowForSession(
    gate: IGateItem,
    idempotencyKey: string
  ): Promise<IGateItem> {
    await allowToolForSession(this._client, gate.sessionId, gate.toolName);
    return this.resolve(
      gate,
      'approve',
      `allowed ${gate.toolName} for this session`,
      idempotencyKey
    );
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._client.eventReceived.disconnect(this._onEvent, this);
    this._client.resumed.disconnect(this._onResumed, this);
    super.dispose();
  }

  private _onResumed(): void {
    void this.refresh();
  }

  private _onEvent(_: IOpenFoalClient, frame: IEventFrame): void {
    if (
      frame.event !== 'policy-gate.requested' &&
      frame.event !== 'policy-gate.resolved'
    ) {
      return;
    }
    const gate = frame.payload?.gate as IGateItem | undefined;
    if (!gate?.gateId) {
      return;
    }
    // A gate resolved elsewhere stays on screen with its new status until the next refresh.
    if (this._cards.has(gate.gateId) || this._matches(gate)) {
      this._show(gate);
      this._updateEmpty();
    }
  }

  private _matches(gate: IGateItem): boolean {
    return this._filter === '' || gate.status === this._filter;
  }

  private _show(gate: IGateItem): void {
    let card = this._cards.get(gate.gateId);
    if (!card) {
      card = new GateCard(this, this._trans);
      this._cards.set(gate.gateId, card);
      const item = h(
        'div',
        { class: 'jp-OpenFoal-approvalsItem', role: 'listitem' },
        h(
          'div',
          { class: 'jp-OpenFoal-approvalsSession' },
          this._trans.__('Session %1', gate.sessionId),
          gate.createdAt
            ? ` · ${new Date(gate.createdAt).toLocaleString()}`
            : ''
        ),
        card.node
      );
      this._list.append(item);
    }
    card.render(gate);
  }

  private _updateEmpty(): void {
    const empty = this._cards.size === 0;
    this._list.dataset.empty = String(empty);
    if (empty) {
      this._list.replaceChildren(
        h(
          'p',
          { class: 'jp-OpenFoal-approvalsEmpty' },
          this._trans.__('No gates to show.')
        )
      );
    } else {
      this._list.querySelector('.jp-OpenFoal-approvalsEmpty')?.remove();
    }
  }

  private readonly _client: IOpenFoalClient;
  private readonly _trans: TranslationBundle;
  private readonly _filterSelect: HTMLSelectElement;
  private readonly _status: HTMLElement;
  private readonly _list: HTMLElement;
  private readonly _cards = new Map<string, GateCard>();
  private _filter: GateFilter = 'pending';
}

/** Options of {@link ApprovalsPanel}. */
export namespace ApprovalsPanel {
  /** What the panel needs. */
  export interface IOptions {
    client: IOpenFoalClient;
    trans: TranslationBundle;
  }
}
