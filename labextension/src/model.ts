/**
 * The chat model: the current session, its entries and run, and the session list.
 */
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import {
  ChatEntry,
  applyRunEvent,
  entriesFromMessages,
  stoppedId
} from './entries';
import {
  GateDecision,
  IGateItem,
  allowToolForSession,
  listGates,
  resolveGate
} from './gates';
import {
  GatewayError,
  IEventFrame,
  IRunAccepted,
  ISession,
  ISessionView,
  ISessionsGetPayload,
  ISetModeResult,
  RuntimeMode
} from './protocol';
import { ConnectionStatus, IOpenFoalClient } from './tokens';

/** The run in progress in the current session. */
export interface IActiveRun {
  runId: string;
  traceId?: string;
  stopping: boolean;
}

/** The state behind one chat panel. */
export class ChatModel implements IDisposable {
  constructor(options: ChatModel.IOptions) {
    this._client = options.client;
    this._runExtras = options.runExtras ?? (() => ({}));
    this._client.eventReceived.connect(this._onEvent, this);
    this._client.statusChanged.connect(this._onStatus, this);
    this._client.resumed.connect(this._onResumed, this);
  }

  /** What the chat shows, oldest first. */
  get entries(): ReadonlyArray<ChatEntry> {
    return this._entries;
  }

  /** The session on screen; `null` until the first message of a new one. */
  get session(): ISessionView | null {
    return this._session;
  }

  /** The user's sessions, newest first, as `sessions.list` gave them. */
  get sessions(): ReadonlyArray<ISession> {
    return this._sessions;
  }

  /** The run in progress, if any. */
  get activeRun(): IActiveRun | null {
    return this._activeRun;
  }

  /** True while a message is being sent or a run is in progress. */
  get busy(): boolean {
    return this._sending || this._activeRun !== null;
  }

  /** The gateway connection state. */
  get connection(): ConnectionStatus {
    return this._client.status;
  }

  /** The runtime mode a new session starts in. */
  get defaultRuntimeMode(): RuntimeMode {
    return this._defaultMode;
  }
  set defaultRuntimeMode(mode: RuntimeMode) {
    this._defaultMode = mode;
    this._stateChanged.emit(undefined);
  }

  /** The runtime mode shown for the current (or next new) session. */
  get runtimeMode(): RuntimeMode {
    return this._session?.runtimeMode ?? this._defaultMode;
  }

  /** A mode change waiting for the next turn, if any. */
  get pendingRuntimeMode(): RuntimeMode | null {
    return this._session?.pendingRuntimeMode ?? null;
  }

  /** The model requested for runs (`provider:model`); empty for the server's default. */
  modelId = '';

  /** Emitted when entries are added, updated or replaced. */
  get entriesChanged(): ISignal<this, ChatModel.IEntriesChange> {
    return this._entriesChanged;
  }

  /** Emitted when the session, run, mode or connection state changes. */
  get stateChanged(): ISignal<this, void> {
    return this._stateChanged;
  }

  /** Emitted when the session list changes. */
  get sessionsChanged(): ISignal<this, void> {
    return this._sessionsChanged;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** Connect and load the session list. */
  async start(): Promise<void> {
    await this._client.connect();
    await this.refreshSessions();
  }

  /** Send a message or chat command (`/new`, `/reset`, `/compact`) as `agent.run`. */
  async send(input: string): Promise<boolean> {
    const text = input.trim();
    if (!text || this.busy) {
      return false;
    }
    this._push({ kind: 'user', id: `u${++this._counter}`, text });
    const previous = this._session;
    const params: Record<string, unknown> = {
      input: text,
      ...this._runExtras()
    };
    if (previous) {
      params.sessionId = previous.id;
    } else {
      params.runtimeMode = this._defaultMode;
    }
    // Until the `res` names the session, hold events of sessions not yet on screen.
    this._pendingNew = true;
    if (this.modelId) {
      params.model = this.modelId;
    }
    this._sending = true;
    this._stateChanged.emit(undefined);
    try {
      const res = await this._client.request<IRunAccepted>('agent.run', params);
      if (previous && res.sessionId !== previous.id) {
        // `/new` answers with another session: the screen follows it.
        this._client.untrack(previous.id);
        this._reset([{ kind: 'user', id: `u${++this._counter}`, text }]);
      }
      if (!this._session || this._session.id !== res.sessionId) {
        this._session = {
          id: res.sessionId,
          runtimeMode: (params.runtimeMode as RuntimeMode) ?? this._defaultMode
        };
        if (this._client.lastSeq(res.sessionId) === undefined) {
          this._client.track(res.sessionId, 0);
        }
      }
      if (!this._finished.has(res.runId) && !this._activeRun) {
        this._activeRun = { runId: res.runId, stopping: false };
      }
      const orphans = this._orphans.filter(
        f => f.payload.sessionId === res.sessionId
      );
      this._orphans = [];
      this._pendingNew = false;
      orphans.forEach(frame => this._onEvent(this._client, frame));
      void this._refreshCurrent();
      return true;
    } catch (reason) {
      this._pushError(reason);
      return false;
    } finally {
      this._sending = false;
      this._pendingNew = false;
      this._stateChanged.emit(undefined);
    }
  }

  /** Stop the run in progress (`agent.abort`). */
  async stop(): Promise<void> {
    const run = this._activeRun;
    if (!run || run.stopping) {
      return;
    }
    run.stopping = true;
    this._stateChanged.emit(undefined);
    try {
      const res = await this._client.request('agent.abort', {
        runId: run.runId
      });
      const id = stoppedId(run.runId);
      if (res?.status === 'aborted' && !this._entries.some(e => e.id === id)) {
        this._push({ kind: 'notice', id, text: 'stopped' });
      }
      this._finishRun(run.runId);
    } catch (reason) {
      run.stopping = false;
      this._pushError(reason);
    }
    this._stateChanged.emit(undefined);
  }

  /** Leave the current session; the next message starts a new one. */
  newSession(): void {
    if (this._session) {
      this._client.untrack(this._session.id);
    }
    this._session = null;
    this._activeRun = null;
    this._reset([]);
  }

  /** Show a stored session and follow its events from where the store is. */
  async openSession(sessionId: string): Promise<void> {
    if (this._session) {
      this._client.untrack(this._session.id);
    }
    this._activeRun = null;
    // `afterSeq` makes the gateway report `lastSeq`, the point the transcript stands at.
    const payload = await this._client.request<ISessionsGetPayload>(
      'sessions.get',
      { sessionId, includeMessages: true, afterSeq: 0, limit: 1 }
    );
    this._session = payload.session;
    this._reset(entriesFromMessages(payload.messages ?? []));
    const lastSeq = payload.lastSeq ?? (await this._latestSeq(sessionId));
    this._client.track(sessionId, lastSeq);
    await this._client.catchUp(sessionId);
    void this._loadGates(sessionId);
  }

  /** Send the last message again with the built-in demo model, from now on in this panel. */
  async tryDemo(): Promise<boolean> {
    this.modelId = 'demo';
    const last = [...this._entries].reverse().find(e => e.kind === 'user');
    return last && last.kind === 'user' ? this.send(last.text) : false;
  }

  /** Decide a gate (`policy-gate.resolve`) and show the gate as the server answered. */
  async resolveGate(
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
    this._showGate(resolved);
    return resolved;
  }

  /** Allow the gate's tool for the rest of its session, then approve the gate. */
  async allowForSession(
    gate: IGateItem,
    idempotencyKey: string
  ): Promise<IGateItem> {
    await allowToolForSession(this._client, gate.sessionId, gate.toolName);
    return this.resolveGate(
      gate,
      'approve',
      `allowed ${gate.toolName} for this session`,
      idempotencyKey
    );
  }

  /** Reload the session list (`sessions.list`). */
  async refreshSessions(): Promise<void> {
    const payload = await this._client.request('sessions.list', { limit: 50 });
    this._sessions = (payload?.items ?? []) as ISession[];
    const current = this._sessions.find(s => s.id === this._session?.id);
    if (current && this._session) {
      this._session = { ...this._session, ...current };
      this._stateChanged.emit(undefined);
    }
    this._sessionsChanged.emit(undefined);
  }

  /** Switch the runtime mode (`runtime.setMode`); queued when a run is in progress. */
  async setRuntimeMode(mode: RuntimeMode): Promise<void> {
    if (!this._session) {
      this.defaultRuntimeMode = mode;
      return;
    }
    try {
      const res = await this._client.request<ISetModeResult>(
        'runtime.setMode',
        {
          sessionId: this._session.id,
          runtimeMode: mode
        }
      );
      if (res.status === 'queued-change') {
        this._session.pendingRuntimeMode = res.runtimeMode;
      } else {
        this._session.runtimeMode = res.runtimeMode;
        this._session.pendingRuntimeMode = null;
      }
    } catch (reason) {
      this._pushError(reason);
    }
    this._stateChanged.emit(undefined);
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    Signal.disconnectReceiver(this);
    Signal.clearData(this);
  }

  private _onEvent(_: IOpenFoalClient, frame: IEventFrame): void {
    const p = frame.payload ?? {};
    if (frame.event === 'session.updated' && p.session) {
      this._mergeSession(p.session as ISession);
      return;
    }
    if (!this._session || p.sessionId !== this._session.id) {
      if (this._pendingNew && p.sessionId) {
        // Events of the session this send is creating can beat its `res`.
        this._orphans.push(frame);
      }
      return;
    }
    switch (frame.event) {
      case 'agent.accepted':
        if (p.runId && !this._finished.has(p.runId)) {
          this._activeRun = {
            runId: p.runId,
            traceId: p.traceId,
            stopping: this._activeRun?.stopping ?? false
          };
        }
        if (p.runtimeMode) {
          this._session.runtimeMode = p.runtimeMode;
        }
        this._stateChanged.emit(undefined);
        break;
      case 'runtime.mode_changed':
        this._session.runtimeMode = p.runtimeMode;
        this._session.pendingRuntimeMode = null;
        this._stateChanged.emit(undefined);
        break;
      case 'sync.state_changed':
        this._session.syncState = p.syncState;
        this._stateChanged.emit(undefined);
        break;
      default:
        break;
    }
    const { added, updated } = applyRunEvent(this._entries, frame);
    if (added.length || updated.length) {
      this._entriesChanged.emit({ type: 'items', added, updated });
    }
    if (
      p.runId &&
      (frame.event === 'agent.completed' || frame.event === 'agent.failed')
    ) {
      this._finishRun(p.runId);
      void this._refreshCurrent();
    }
  }

  private async _loadGates(sessionId: string): Promise<void> {
    // A stored transcript says nothing of gates: the cards of waiting calls come from the list.
    try {
      const gates = await listGates(this._client, { sessionId, limit: 100 });
      gates.reverse().forEach(gate => this._showGate(gate));
    } catch (reason) {
      if (!this._isDisposed && this._client.status === 'open') {
        console.warn('OpenFoal: could not list the session gates', reason);
      }
    }
  }

  private _showGate(gate: IGateItem): void {
    if (gate.sessionId !== this._session?.id) {
      return;
    }
    const frame: IEventFrame = {
      type: 'event',
      event:
        gate.status === 'pending'
          ? 'policy-gate.requested'
          : 'policy-gate.resolved',
      payload: { sessionId: gate.sessionId, runId: gate.runId, gate }
    };
    const { added, updated } = applyRunEvent(this._entries, frame);
    if (added.length || updated.length) {
      this._entriesChanged.emit({ type: 'items', added, updated });
    }
  }

  private _onStatus(): void {
    this._stateChanged.emit(undefined);
  }

  private _onResumed(): void {
    void this._refreshCurrent();
    void this.refreshSessions().catch(() => undefined);
  }

  private _finishRun(runId: string): void {
    this._finished.add(runId);
    if (this._activeRun?.runId === runId) {
      this._activeRun = null;
    }
    const updated: number[] = [];
    this._entries.forEach((entry, index) => {
      if (
        entry.kind === 'assistant' &&
        entry.streaming &&
        entry.runId === runId
      ) {
        entry.streaming = false;
        updated.push(index);
      }
    });
    if (updated.length) {
      this._entriesChanged.emit({ type: 'items', added: [], updated });
    }
    this._stateChanged.emit(undefined);
  }

  private async _refreshCurrent(): Promise<void> {
    const id = this._session?.id;
    if (!id) {
      return;
    }
    try {
      const payload = await this._client.request<ISessionsGetPayload>(
        'sessions.get',
        { sessionId: id }
      );
      this._mergeSession(payload.session);
      if (payload.session?.status === 'idle' && this._activeRun) {
        // The run ended while this view was away; its events were caught up already.
        this._finishRun(this._activeRun.runId);
      }
    } catch (reason) {
      if (!this._isDisposed) {
        console.warn('OpenFoal: could not refresh the session', reason);
      }
    }
  }

  private _mergeSession(session: ISession): void {
    if (!session?.id) {
      return;
    }
    if (this._session?.id === session.id) {
      this._session = { ...this._session, ...session };
      this._stateChanged.emit(undefined);
    }
    const index = this._sessions.findIndex(s => s.id === session.id);
    if (index >= 0) {
      this._sessions = [...this._sessions];
      this._sessions[index] = { ...this._sessions[index], ...session };
      this._sessionsChanged.emit(undefined);
    }
  }

  private async _latestSeq(sessionId: string): Promise<number> {
    // Without `lastSeq` in the payload, walk the stored events to their end.
    let seq = 0;
    for (let page = 0; page < 1000; page++) {
      const payload = await this._client.request<ISessionsGetPayload>(
        'sessions.get',
        { sessionId, afterSeq: seq, limit: 1000 }
      );
      const seqs = (payload.events ?? [])
        .map(e => e.seq)
        .filter((s): s is number => typeof s === 'number');
      if (seqs.length === 0) {
        break;
      }
      const next = Math.max(...seqs);
      if (next <= seq) {
        break;
      }
      seq = next;
      if (seqs.length < 1000) {
        break;
      }
    }
    return seq;
  }

  private _push(entry: ChatEntry): void {
    this._entries.push(entry);
    this._entriesChanged.emit({
      type: 'items',
      added: [this._entries.length - 1],
      updated: []
    });
  }

  private _pushError(reason: unknown): void {
    const body =
      reason instanceof GatewayError
        ? reason.body
        : { code: 'INTERNAL_ERROR', message: String(reason) };
    this._push({
      kind: 'error',
      id: `e${++this._counter}`,
      code: body.code,
      message: body.message,
      traceId: body.traceId
    });
  }

  private _reset(entries: ChatEntry[]): void {
    this._entries = entries;
    this._entriesChanged.emit({ type: 'reset', added: [], updated: [] });
    this._stateChanged.emit(undefined);
  }

  private readonly _client: IOpenFoalClient;
  private readonly _runExtras: () => Record<string, unknown>;
  private _entries: ChatEntry[] = [];
  private _session: ISessionView | null = null;
  private _sessions: ISession[] = [];
  private _activeRun: IActiveRun | null = null;
  private _finished = new Set<string>();
  private _orphans: IEventFrame[] = [];
  private _pendingNew = false;
  private _sending = false;
  private _defaultMode: RuntimeMode = 'local';
  private _counter = 0;
  private _isDisposed = false;
  private _entriesChanged = new Signal<this, ChatModel.IEntriesChange>(this);
  private _stateChanged = new Signal<this, void>(this);
  private _sessionsChanged = new Signal<this, void>(this);
}

/** Options and change types of {@link ChatModel}. */
export namespace ChatModel {
  /** Options of a chat model. */
  export interface IOptions {
    /** The shared gateway client. */
    client: IOpenFoalClient;
    /** Extension fields added to every `agent.run` (e.g. `notebookKernelId`). */
    runExtras?: () => Record<string, unknown>;
  }

  /** What changed in the entries: indices added or updated, or everything. */
  export interface IEntriesChange {
    type: 'items' | 'reset';
    added: number[];
    updated: number[];
  }
}
