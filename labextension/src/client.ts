/**
 * The WebSocket client of the OpenFoal gateway: handshake, request correlation,
 * idempotency keys, ordered and deduplicated session events, reconnect with resume.
 */
import { PromiseDelegate, UUID } from '@lumino/coreutils';
import { ISignal, Signal } from '@lumino/signaling';

import {
  GatewayError,
  IConnectPayload,
  IEventFrame,
  IReqFrame,
  IResFrame,
  SIDE_EFFECT_METHODS,
  toEventFrame
} from './protocol';
import { ConnectionStatus, IOpenFoalClient, IRequestOptions } from './tokens';

/** Errors after which reconnecting cannot help. */
const FATAL_CONNECT_CODES = new Set(['UNAUTHORIZED', 'FORBIDDEN']);

/** The gateway client; one instance is shared by the panels of a JupyterLab page. */
export class OpenFoalClient implements IOpenFoalClient {
  constructor(options: OpenFoalClient.IOptions) {
    this._url = options.url;
    this._WebSocket = options.WebSocket ?? WebSocket;
    this._clientName = options.clientName ?? 'openfoal-jupyterlab';
    this._clientVersion = options.clientVersion ?? '';
    this._initialDelayMs = options.initialDelayMs ?? 250;
    this._maxDelayMs = options.maxDelayMs ?? 10000;
    this._requestTimeoutMs = options.requestTimeoutMs ?? 30000;
    this._pageSize = options.pageSize ?? 1000;
    this._gapRetryMs = options.gapRetryMs ?? 250;
  }

  get status(): ConnectionStatus {
    return this._status;
  }

  get serverInfo(): IConnectPayload | null {
    return this._serverInfo;
  }

  get statusChanged(): ISignal<this, ConnectionStatus> {
    return this._statusChanged;
  }

  get eventReceived(): ISignal<this, IEventFrame> {
    return this._eventReceived;
  }

  get resumed(): ISignal<this, void> {
    return this._resumed;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  connect(): Promise<IConnectPayload> {
    if (this._isDisposed) {
      return Promise.reject(clientError('client is disposed'));
    }
    if (this._status === 'open' && this._serverInfo) {
      return Promise.resolve(this._serverInfo);
    }
    if (!this._ready) {
      this._ready = new PromiseDelegate<IConnectPayload>();
      // Callers that only wait for requests must not see an unhandled rejection.
      this._ready.promise.catch(() => undefined);
    }
    if (!this._ws && this._reconnectTimer === null) {
      this._open();
    }
    return this._ready.promise;
  }

  request<T = any>(
    method: string,
    params: Record<string, unknown> = {},
    options: IRequestOptions = {}
  ): Promise<T> {
    if (this._isDisposed) {
      return Promise.reject(clientError('client is disposed'));
    }
    const frame: IReqFrame = {
      type: 'req',
      id: `r_${this._prefix}_${++this._counter}`,
      method,
      params: { ...params }
    };
    if (SIDE_EFFECT_METHODS.has(method) && !frame.params.idempotencyKey) {
      // The key is fixed once, so a resend after a reconnect never runs twice.
      frame.params.idempotencyKey = options.idempotencyKey ?? UUID.uuid4();
    }
    return new Promise<T>((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? this._requestTimeoutMs;
      const timer = setTimeout(() => {
        this._pending.delete(frame.id);
        reject(
          clientError(`no answer to ${method} within ${timeoutMs} ms`, true)
        );
      }, timeoutMs);
      this._pending.set(frame.id, {
        frame,
        resolve,
        reject,
        timer,
        sentOn: null
      });
      if (this._status === 'open') {
        this._sendPending();
      } else {
        this.connect().catch(() => undefined);
      }
    });
  }

  track(sessionId: string, lastSeq: number): void {
    const cursor = this._cursors.get(sessionId);
    if (cursor) {
      cursor.lastSeq = lastSeq;
    } else {
      this._cursors.set(sessionId, { lastSeq, buffer: [], catchingUp: null });
    }
  }

  untrack(sessionId: string): void {
    this._cursors.delete(sessionId);
  }

  lastSeq(sessionId: string): number | undefined {
    return this._cursors.get(sessionId)?.lastSeq;
  }

  catchUp(sessionId: string): Promise<void> {
    let cursor = this._cursors.get(sessionId);
    if (!cursor) {
      cursor = { lastSeq: 0, buffer: [], catchingUp: null };
      this._cursors.set(sessionId, cursor);
    }
    if (cursor.catchingUp) {
      return cursor.catchingUp;
    }
    const c = cursor;
    const promise = this._catchUp(sessionId, c).finally(() => {
      c.catchingUp = null;
    });
    c.catchingUp = promise;
    return promise;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    if (this._reconnectTimer !== null) {
      clearTimeout(this._reconnectTimer);
      this._reconnectTimer = null;
    }
    const ws = this._ws;
    this._ws = null;
    ws?.close();
    for (const pending of this._pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(clientError('client is disposed'));
    }
    this._pending.clear();
    this._ready?.reject(clientError('client is disposed'));
    this._setStatus('closed');
    Signal.clearData(this);
  }

  private _open(): void {
    this._setStatus(this._everConnected ? 'reconnecting' : 'connecting');
    const ws = new this._WebSocket(this._url);
    this._ws = ws;
    ws.onopen = () => {
      if (this._ws !== ws) {
        return;
      }
      this._connectId = `c_${this._prefix}_${++this._counter}`;
      const connect: IReqFrame = {
        type: 'req',
        id: this._connectId,
        method: 'connect',
        params: {
          client: { name: this._clientName, version: this._clientVersion },
          protocol: { min: '1', max: '1' }
        }
      };
      ws.send(JSON.stringify(connect));
    };
    ws.onmessage = (msg: MessageEvent) => {
      if (this._ws === ws) {
        this._onMessage(String(msg.data));
      }
    };
    ws.onclose = () => {
      if (this._ws === ws) {
        this._onClose();
      }
    };
    // An error is always followed by a close, which does the work.
    ws.onerror = () => undefined;
  }

  private _onMessage(text: string): void {
    let frame: IResFrame | IEventFrame;
    try {
      frame = JSON.parse(text);
    } catch {
      console.warn('OpenFoal: ignored a frame that is not JSON');
      return;
    }
    if (frame.type === 'res') {
      if (frame.id === this._connectId) {
        this._onConnected(frame);
        return;
      }
      const pending = this._pending.get(frame.id);
      if (!pending) {
        return;
      }
      this._pending.delete(frame.id);
      clearTimeout(pending.timer);
      if (frame.ok) {
        pending.resolve(frame.payload ?? {});
      } else {
        pending.reject(
          new GatewayError(
            frame.error ?? { code: 'INTERNAL_ERROR', message: 'request failed' }
          )
        );
      }
    } else if (frame.type === 'event' || 'event' in frame) {
      this._ingest(frame as IEventFrame);
    }
  }

  private _onConnected(frame: IResFrame): void {
    this._connectId = null;
    if (!frame.ok) {
      const error = new GatewayError(
        frame.error ?? { code: 'INTERNAL_ERROR', message: 'connect failed' }
      );
      if (FATAL_CONNECT_CODES.has(error.code)) {
        this._fatal(error);
      } else {
        this._ws?.close();
      }
      return;
    }
    const info = frame.payload as IConnectPayload;
    const resuming = this._everConnected;
    this._serverInfo = info;
    this._everConnected = true;
    this._attempt = 0;
    this._setStatus('open');
    this._ready?.resolve(info);
    this._ready = null;
    this._sendPending();
    if (resuming) {
      void this._resumeAll();
    }
  }

  private async _resumeAll(): Promise<void> {
    const ids = Array.from(this._cursors.keys());
    await Promise.all(
      ids.map(id =>
        this.catchUp(id).catch(reason =>
          console.warn(`OpenFoal: could not resume session ${id}`, reason)
        )
      )
    );
    this._resumed.emit(undefined);
  }

  private _onClose(): void {
    this._ws = null;
    this._connectId = null;
    if (this._isDisposed || this._status === 'closed') {
      return;
    }
    for (const pending of this._pending.values()) {
      pending.sentOn = null;
    }
    const base = Math.min(
      this._maxDelayMs,
      this._initialDelayMs * 2 ** this._attempt
    );
    this._attempt += 1;
    // Jitter keeps many tabs from reconnecting in lockstep after a restart.
    const delay = base * (0.5 + Math.random() * 0.5);
    this._setStatus('reconnecting');
    this._reconnectTimer = setTimeout(() => {
      this._reconnectTimer = null;
      if (!this._isDisposed) {
        this._open();
      }
    }, delay);
  }

  private _fatal(error: GatewayError): void {
    this._setStatus('closed');
    this._ws?.close();
    this._ws = null;
    this._ready?.reject(error);
    this._ready = null;
    for (const pending of this._pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this._pending.clear();
  }

  private _sendPending(): void {
    const ws = this._ws;
    if (!ws || this._status !== 'open') {
      return;
    }
    for (const pending of this._pending.values()) {
      if (pending.sentOn !== ws) {
        pending.sentOn = ws;
        ws.send(JSON.stringify(pending.frame));
      }
    }
  }

  private _ingest(frame: IEventFrame): void {
    const sessionId = frame.payload?.sessionId;
    const seq = frame.seq;
    if (typeof seq !== 'number' || !sessionId) {
      this._eventReceived.emit(frame);
      return;
    }
    let cursor = this._cursors.get(sessionId);
    if (!cursor) {
      // A session first seen live: its earlier events are not this view's concern.
      cursor = { lastSeq: seq - 1, buffer: [], catchingUp: null };
      this._cursors.set(sessionId, cursor);
    }
    if (cursor.catchingUp) {
      cursor.buffer.push(frame);
      return;
    }
    if (seq <= cursor.lastSeq) {
      return;
    }
    if (seq > cursor.lastSeq + 1) {
      cursor.buffer.push(frame);
      void this.catchUp(sessionId).catch(reason =>
        console.warn(`OpenFoal: catch-up of ${sessionId} failed`, reason)
      );
      return;
    }
    this._deliver(cursor, frame);
  }

  private _deliver(cursor: Private.ICursor, frame: IEventFrame): void {
    const seq = frame.seq as number;
    if (seq <= cursor.lastSeq) {
      return;
    }
    cursor.lastSeq = seq;
    this._eventReceived.emit(frame);
  }

  private async _catchUp(
    sessionId: string,
    cursor: Private.ICursor
  ): Promise<void> {
    try {
      // Deltas reach the store a moment after they are announced: a gap may need a retry.
      for (let round = 0; round < 4; round++) {
        await this._fetchAfter(sessionId, cursor);
        this._flushBuffer(cursor, false);
        if (cursor.buffer.length === 0) {
          return;
        }
        await new Promise(resolve => setTimeout(resolve, this._gapRetryMs));
      }
    } finally {
      // Whatever is still missing will not come: deliver the rest in order.
      this._flushBuffer(cursor, true);
    }
  }

  private async _fetchAfter(
    sessionId: string,
    cursor: Private.ICursor
  ): Promise<void> {
    for (let page = 0; page < 1000; page++) {
      const afterSeq = cursor.lastSeq;
      const payload = await this.request('sessions.get', {
        sessionId,
        afterSeq,
        limit: this._pageSize
      });
      const events = ((payload?.events ?? []) as Record<string, any>[])
        .map(raw => toEventFrame(raw, sessionId))
        .filter((e): e is IEventFrame => !!e && typeof e.seq === 'number')
        .sort((a, b) => (a.seq as number) - (b.seq as number));
      for (const event of events) {
        this._deliver(cursor, event);
      }
      if (events.length < this._pageSize || cursor.lastSeq === afterSeq) {
        return;
      }
    }
  }

  private _flushBuffer(cursor: Private.ICursor, force: boolean): void {
    cursor.buffer.sort((a, b) => (a.seq as number) - (b.seq as number));
    const rest: IEventFrame[] = [];
    for (const frame of cursor.buffer) {
      const seq = frame.seq as number;
      if (seq <= cursor.lastSeq) {
        continue;
      }
      if (seq === cursor.lastSeq + 1 || force) {
        this._deliver(cursor, frame);
      } else {
        rest.push(frame);
      }
    }
    cursor.buffer = rest;
  }

  private _setStatus(status: ConnectionStatus): void {
    if (this._status !== status) {
      this._status = status;
      this._statusChanged.emit(status);
    }
  }

  private readonly _url: string;
  private readonly _WebSocket: OpenFoalClient.WebSocketConstructor;
  private readonly _clientName: string;
  private readonly _clientVersion: string;
  private readonly _initialDelayMs: number;
  private readonly _maxDelayMs: number;
  private readonly _requestTimeoutMs: number;
  private readonly _pageSize: number;
  private readonly _gapRetryMs: number;
  private readonly _prefix = Math.random().toString(36).slice(2, 8);
  private _counter = 0;
  private _ws: WebSocket | null = null;
  private _connectId: string | null = null;
  private _status: ConnectionStatus = 'idle';
  private _serverInfo: IConnectPayload | null = null;
  private _everConnected = false;
  private _attempt = 0;
  private _reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private _ready: PromiseDelegate<IConnectPayload> | null = null;
  private _isDisposed = false;
  private _pending = new Map<string, Private.IPending>();
  private _cursors = new Map<string, Private.ICursor>();
  private _statusChanged = new Signal<this, ConnectionStatus>(this);
  private _eventReceived = new Signal<this, IEventFrame>(this);
  private _resumed = new Signal<this, void>(this);
}

/** The client's options and helper types. */
export namespace OpenFoalClient {
  /** A WebSocket class, e.g. `ServerConnection.ISettings.WebSocket`. */
  export type WebSocketConstructor = new (url: string) => WebSocket;

  /** Options of {@link OpenFoalClient}. */
  export interface IOptions {
    /** The gateway URL, `{base_url}openfoal/ws` with a ws(s) scheme. */
    url: string;
    /** The WebSocket implementation; the browser's by default. */
    WebSocket?: WebSocketConstructor;
    /** `connect.client.name`. */
    clientName?: string;
    /** `connect.client.version`. */
    clientVersion?: string;
    /** First reconnect delay; it doubles up to {@link maxDelayMs}. */
    initialDelayMs?: number;
    /** Longest reconnect delay. */
    maxDelayMs?: number;
    /** Default request timeout. */
    requestTimeoutMs?: number;
    /** Events asked for per `sessions.get` page when catching up. */
    pageSize?: number;
    /** Wait between catch-up rounds while a gap is not yet stored. */
    gapRetryMs?: number;
  }
}

/** Build a client-side error in the protocol's error shape. */
function clientError(message: string, retryable = false): GatewayError {
  return new GatewayError({ code: 'INTERNAL_ERROR', message, retryable });
}

namespace Private {
  /** A request waiting for its `res`. */
  export interface IPending {
    frame: IReqFrame;
    resolve: (payload: any) => void;
    reject: (reason: GatewayError) => void;
    timer: ReturnType<typeof setTimeout>;
    /** The socket it went out on; a new socket sends it again. */
    sentOn: WebSocket | null;
  }

  /** Where a session's event stream stands. */
  export interface ICursor {
    lastSeq: number;
    buffer: IEventFrame[];
    catchingUp: Promise<void> | null;
  }
}
