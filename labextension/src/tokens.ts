/**
 * Tokens and public interfaces of the OpenFoal JupyterLab extension.
 */
import { Token } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';
import { ISignal } from '@lumino/signaling';

import { IConnectPayload, IEventFrame } from './protocol';

/** The state of the gateway connection. */
export type ConnectionStatus =
  'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Options of one request. */
export interface IRequestOptions {
  /** Reuse a key to retry a side-effect request safely; a new one is made otherwise. */
  idempotencyKey?: string;
  /** Reject when no answer came within this many milliseconds. */
  timeoutMs?: number;
}

/** The connection to the OpenFoal gateway, shared by every panel. */
export interface IOpenFoalClient extends IDisposable {
  /** The current connection state. */
  readonly status: ConnectionStatus;
  /** What the server said on `connect`, or `null` before the first handshake. */
  readonly serverInfo: IConnectPayload | null;
  /** Emitted when {@link status} changes. */
  readonly statusChanged: ISignal<IOpenFoalClient, ConnectionStatus>;
  /** Session events in `seq` order, each at most once, none skipped. */
  readonly eventReceived: ISignal<IOpenFoalClient, IEventFrame>;
  /** Emitted after a reconnect once every tracked session has caught up. */
  readonly resumed: ISignal<IOpenFoalClient, void>;
  /** Open the socket and handshake; resolves with the `connect` payload. */
  connect(): Promise<IConnectPayload>;
  /** Send a request and resolve with its payload, or reject with a `GatewayError`. */
  request<T = any>(
    method: string,
    params?: Record<string, unknown>,
    options?: IRequestOptions
  ): Promise<T>;
  /** Remember `seq` for a session so that a reconnect resumes it after `lastSeq`. */
  track(sessionId: string, lastSeq: number): void;
  /** Stop resuming a session. */
  untrack(sessionId: string): void;
  /** The last `seq` delivered for a session, if tracked. */
  lastSeq(sessionId: string): number | undefined;
  /** Fetch the events after `afterSeq` and deliver them through {@link eventReceived}. */
  catchUp(sessionId: string): Promise<void>;
}

/** The token of the shared gateway client. */
export const IOpenFoalClient = new Token<IOpenFoalClient>(
  'openfoal:IOpenFoalClient',
  'The WebSocket client of the OpenFoal gateway.'
);
