/**
 * The Approvals panel: gates across the user's sessions, filtered by status, session and tool,
 * decided in place, each with a link into its session's chat.
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
import { IErrorBody, IEventFrame } from '../protocol';
import { ConnectionStatus, IOpenFoalClient } from '../tokens';
import { h } from '../widgets/dom';
import { GateCard, IGateActions } from '../widgets/gatecard';
import { iconButton } from '../widgets/header';

/** The status filter: one status, or every gate (`''`). */
export type GateFilter = GateStatus | '';

/** The tools a gate can hold (PROTOCOL.md, "Tool names"). */
export const GATED_TOOLS = [
  'bash.exec',
  'python.exec',
  'file.write',
  'file.read',
  'file.list',
  'http.request',
  'memory.get',
  'memory.append'
];

/** Lists gates from `policy-gate.list` and follows `policy-gate.*` events live. */
export class ApprovalsPanel extends Widget implements IGateActions {
  constructor(options: ApprovalsPanel.IOptions) {
    super();
    this._client = options.client;
    this._trans = options.trans;
    this._openSession = options.openSession ?? null;
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
    this._sessionInput = h('input', {
      type: 'search',
      class: 'jp-OpenFoal-approvalsSessionFilter jp-mod-styled',
      placeholder: trans.__('any session'),
      'aria-label': trans.__('Show gates of session'),
      spellcheck: 'false'
    });
    this._sessionInput.addEventListener('change', () => {
      this._session = this._sessionInput.value.trim();
      void this.refresh();
    });
    this._toolSelect = h('select', {
      class: 'jp-OpenFoal-approvalsTool',
      'aria-label': trans.__('Show gates of tool')
    });
    this._toolSelect.append(h('option', { value: '' }, trans.__('Any tool')));
    for (const tool of GATED_TOOLS) {
      this._toolSelect.append(h('option', { value: tool }, tool));
    }
    this._toolSelect.addEventListener('change', () => {
      this._tool = this._toolSelect.value;
      void this.refresh();
    });
    this._banner = h('div', {
      class: 'jp-OpenFoal-approvalsBanner',
      role: 'alert',
      hidden: true
    });
    const refresh = iconButton(refreshIcon, trans.__('Refresh'), 'refresh');
    refresh.addEventListener('click', () => void this.refresh());
    this._status = h('span', {
      class: 'jp-OpenFoal-approvalsStatus',
      role: 'status'
    });
    this._focusNote = h('div', {
      class: 'jp-OpenFoal-approvalsFocus',
      role: 'status',
      hidden: true
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
        h('label', {}, trans.__('Session'), this._sessionInput),
        h('label', {}, trans.__('Tool'), this._toolSelect),
        refresh,
        this._status
      ),
      this._banner,
      this._focusNote,
      this._list
    );
    this._client.eventReceived.connect(this._onEvent, this);
    this._client.resumed.connect(this._onResumed, this);
    this._client.statusChanged.connect(this._onStatus, this);
  }

  /** The session and tool shown (`''`: any). */
  get sessionFilter(): string {
    return this._session;
  }
  set sessionFilter(value: string) {
    this._session = value;
    this._sessionInput.value = value;
    void this.refresh();
  }
  get toolFilter(): string {
    return this._tool;
  }
  set toolFilter(value: string) {
    this._tool = value;
    this._toolSelect.value = value;
    void this.refresh();
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

  /** The gate named by a link (`?openfoal-gate=<id>`), shown whatever the filters. */
  get focusedGate(): string | null {
    return this._focus;
  }

  /**
   * Show one gate highlighted and scrolled into view, even when the filters hide it (an
   * already decided gate shows its status); says so when the server has no such gate for
   * this user.
   */
  async focusGate(gateId: string): Promise<void> {
    this._focus = gateId.trim() || null;
    await this.refresh();
  }

  /** Reload the list from `policy-gate.list`. */
  async refresh(): Promise<void> {
    const filter = this._filter;
    const query = ++this._query;
    this._status.textContent = this._trans.__('Loading…');
    try {
      await this._client.connect();
      const gates = await listGates(this._client, {
        status: filter,
        sessionId: this._session,
        toolName: this._tool
      });
      if (query !== this._query) {
        return; // a newer filter is loading
      }
      this._cards.clear();
      this._notes.clear();
      this._items.clear();
      this._list.replaceChildren();
      // Oldest first, so the next gate to decide is on top.
      for (const gate of gates.reverse()) {
        this._show(gate);
      }
      if (!(await this._showFocus(query))) {
        return;
      }
      this._status.textContent = '';
      this._updateEmpty();
      this._scrollToFocus();
    } catch (reason) {
      // The list on screen stays as it was: a failed reload never blanks the panel.
      this._status.textContent = this._errorText(errorBody(reason));
    }
  }

  /** Decide a gate from its card. */
  async resolve(
    gate: IGateItem,
    decision: GateDecision,
    reason: string,
    idempotencyKey: string
  ): Promise<IGateItem> {
    this._note(gate.gateId, null);
    let resolved: IGateItem;
    try {
      resolved = await resolveGate(this._client, {
        gateId: gate.gateId,
        decision,
        reason,
        idempotencyKey,
        onConflict: first =>
          this._note(gate.gateId, this._conflictText(first, decision))
      });
    } catch (error) {
      const body = errorBody(error);
      this._note(
        gate.gateId,
        body.code === 'NOT_FOUND'
          ? this._trans.__(
              'This gate is unknown to the server (it may have been deleted with its session).'
            )
          : this._client.status !== 'open'
            ? this._trans.__(
                'The server went away; your decision was not sent. Try again once it is back.'
              )
            : null
      );
      throw error;
    }
    this._show(resolved);
    return resolved;
  }

  /** Another user's gate: its session's rules live on their server, not this one. */
  canAllowForSession(gate: IGateItem): boolean {
    return this._otherOwner(gate) === null;
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
    this._client.statusChanged.disconnect(this._onStatus, this);
    super.dispose();
  }

  /** Add the focused gate when the filters left it out; false when a newer load won. */
  private async _showFocus(query: number): Promise<boolean> {
    const gateId = this._focus;
    const note = this._focusNote;
    if (!gateId) {
      note.hidden = true;
      return true;
    }
    let gate = this._cards.get(gateId)?.gate ?? null;
    let hidden = false;
    if (!gate) {
      const found = await listGates(this._client, { gateId, limit: 1 });
      if (query !== this._query) {
        return false;
      }
      gate = found.find(item => item.gateId === gateId) ?? null;
      if (gate) {
        hidden = true;
        this._show(gate, true);
      }
    }
    const trans = this._trans;
    note.hidden = false;
    note.dataset.found = String(gate !== null);
    note.textContent = !gate
      ? trans.__(
          'Gate %1 does not exist or is not visible to you: it may belong to another user, or have been deleted with its session.',
          gateId
        )
      : hidden
        ? trans.__(
            'Gate %1 from the link is shown although the filters hide it; its card has its status.',
            gateId
          )
        : trans.__('Gate %1 from the link is highlighted below.', gateId);
    return true;
  }

  private _scrollToFocus(): void {
    for (const item of this._list.querySelectorAll('.jp-mod-focused')) {
      item.classList.remove('jp-mod-focused');
    }
    const item = this._focus ? this._items.get(this._focus) : undefined;
    if (item) {
      item.classList.add('jp-mod-focused');
      item.scrollIntoView({ block: 'center' });
    }
  }

  private _onStatus(_: IOpenFoalClient, status: ConnectionStatus): void {
    const lost = status === 'reconnecting' || status === 'closed';
    this._banner.hidden = !lost;
    this._banner.textContent = lost
      ? this._trans.__(
          'The connection to the server is lost; reconnecting. The gates shown may be out of date and decisions wait until it is back.'
        )
      : '';
    if (status === 'open' && this._wasLost) {
      void this.refresh();
    }
    this._wasLost = lost || (this._wasLost && status !== 'open');
  }

  private _conflictText(first: IGateItem, mine: GateDecision): string {
    const trans = this._trans;
    const who = first.resolvedBy ?? trans.__('someone else');
    const yours =
      mine === 'approve'
        ? trans.__('your approval')
        : trans.__('your rejection');
    return trans.__(
      'Already %1 by %2 before %3 arrived; %3 was not applied.',
      first.status,
      who,
      yours
    );
  }

  private _note(gateId: string, text: string | null): void {
    const note = this._notes.get(gateId);
    if (note) {
      note.hidden = !text;
      note.textContent = text ?? '';
    }
  }

  private _errorText(error: IErrorBody): string {
    return `${error.code}: ${error.message}${
      error.traceId ? ` (${this._trans.__('trace %1', error.traceId)})` : ''
    }`;
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
    return (
      (this._filter === '' || gate.status === this._filter) &&
      (this._session === '' || gate.sessionId === this._session) &&
      (this._tool === '' || gate.toolName === this._tool)
    );
  }

  private _show(gate: IGateItem, first = false): void {
    let card = this._cards.get(gate.gateId);
    if (!card) {
      card = new GateCard(this, this._trans);
      this._cards.set(gate.gateId, card);
      const note = h('div', {
        class: 'jp-OpenFoal-approvalsNote',
        role: 'alert',
        hidden: true
      });
      this._notes.set(gate.gateId, note);
      const open = h(
        'button',
        {
          type: 'button',
          class: 'jp-OpenFoal-approvalsOpen jp-mod-styled',
          'aria-label': this._trans.__(
            'Open session %1 in the chat',
            gate.sessionId
          )
        },
        this._trans.__('Open in chat')
      );
      const sessionId = gate.sessionId;
      open.addEventListener('click', () => this._openSession?.(sessionId));
      const owner = this._otherOwner(gate);
      // Another user's session lives on their own server: this chat cannot open it.
      open.hidden = this._openSession === null || owner !== null;
      const item = h(
        'div',
        {
          class: 'jp-OpenFoal-approvalsItem',
          role: 'listitem',
          'data-gate-id': gate.gateId,
          'data-session-id': gate.sessionId,
          'data-tool': gate.toolName
        },
        h(
          'div',
          { class: 'jp-OpenFoal-approvalsSessionRow' },
          h(
            'span',
            { class: 'jp-OpenFoal-approvalsSession' },
            owner
              ? this._trans.__("%1's session %2", owner, gate.sessionId)
              : this._trans.__('Session %1', gate.sessionId),
            gate.createdAt
              ? ` · ${new Date(gate.createdAt).toLocaleString()}`
              : ''
          ),
          open
        ),
        note,
        card.node
      );
      if (owner) {
        // Someone else's gate (routed through the team's cloud instance): say whose it is
        // right above its card, so nobody decides it thinking it is their own.
        item.dataset.requestedBy = owner;
        item.classList.add('jp-mod-otherUser');
        const label = this._trans.__('Requested by %1', owner);
        card.node.before(
          h(
            'div',
            {
              class: 'jp-OpenFoal-approvalsOwner',
              title: this._trans.__(
                'This gate is in a session of %1; deciding it answers their run.',
                owner
              )
            },
            label
          )
        );
        card.node.setAttribute('aria-description', label);
      }
      this._items.set(gate.gateId, item);
      if (first) {
        this._list.prepend(item);
      } else {
        this._list.append(item);
      }
    }
    card.render(gate);
  }

  /** The gate's owner when it is not the signed-in user, else `null`. */
  private _otherOwner(gate: IGateItem): string | null {
    const owner = gate.requestedBy;
    const me = this._client.serverInfo?.user?.name;
    return owner && owner !== me ? owner : null;
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
  private readonly _notes = new Map<string, HTMLElement>();
  private readonly _items = new Map<string, HTMLElement>();
  private readonly _focusNote: HTMLElement;
  private _focus: string | null = null;
  private readonly _sessionInput: HTMLInputElement;
  private readonly _toolSelect: HTMLSelectElement;
  private readonly _banner: HTMLElement;
  private readonly _openSession: ((sessionId: string) => void) | null;
  private _filter: GateFilter = 'pending';
  private _session = '';
  private _tool = '';
  private _query = 0;
  private _wasLost = false;
}

/** Options of {@link ApprovalsPanel}. */
export namespace ApprovalsPanel {
  /** What the panel needs. */
  export interface IOptions {
    client: IOpenFoalClient;
    trans: TranslationBundle;
    /** Open a session in the chat (each gate's "Open in chat" link). */
    openSession?: (sessionId: string) => void;
  }
}
