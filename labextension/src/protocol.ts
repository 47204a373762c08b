/**
 * Wire types of the OpenFoal gateway protocol v1 (PROTOCOL.md), as the panel reads them.
 *
 * The data types come from protocol.generated.ts (generated from the pydantic models);
 * this module names them for the panel and adds the frame helpers.
 */

import type {
  IDisplayBundle,
  IErrorBody,
  IEventFrame as IWireEventFrame,
  IReqFrame as IWireReqFrame,
  IResFrame as IWireResFrame,
  ISession,
  IToolResultPayload
} from './protocol.generated';

export type {
  IAgentRunResult as IRunAccepted,
  IChatMessage,
  IConnectResult as IConnectPayload,
  IDisplayBundle,
  IErrorBody,
  IEventPayloads,
  IMethods,
  ISession,
  ISessionsGetResult as ISessionsGetPayload,
  ISetModeResult
} from './protocol.generated';
export { SIDE_EFFECT_METHODS } from './protocol.generated';

/** Where tools run for a session. */
export type RuntimeMode = NonNullable<ISession['runtimeMode']>;

/** The final status of one tool call. */
export type ToolStatus = IToolResultPayload['status'];

/** A session as the panel knows it: at least its id (the rest comes with the next update). */
export type ISessionView = Pick<ISession, 'id'> & Partial<ISession>;

/** A client request. */
export interface IReqFrame extends IWireReqFrame {
  params: Record<string, unknown>;
}

/** The answer to one request, its payload read as the method's result. */
export interface IResFrame extends Omit<IWireResFrame, 'payload'> {
  payload?: any;
}

/** A server-pushed event, its payload read field by field (see `IEventPayloads`). */
export interface IEventFrame extends Omit<IWireEventFrame, 'type' | 'payload'> {
  type?: 'event';
  payload: IEventPayload;
}

/** Fields every event payload may carry. */
export interface IEventPayload {
  sessionId?: string;
  runId?: string;
  traceId?: string;
  [key: string]: any;
}

/** An error raised by a request: the server's error body, or a client-side failure. */
export class GatewayError extends Error {
  constructor(readonly body: IErrorBody) {
    super(body.message);
    this.name = 'GatewayError';
  }

  /** The protocol error code. */
  get code(): string {
    return this.body.code;
  }

  /** The trace id of the failed request, when the server gave one. */
  get traceId(): string | undefined {
    return this.body.traceId;
  }

  /** Whether the same request may succeed later. */
  get retryable(): boolean {
    return !!this.body.retryable;
  }
}

/** Normalise an event as the server stores it (frame or bare record) to a frame. */
export function toEventFrame(
  raw: Record<string, any>,
  sessionId?: string
): IEventFrame | null {
  if (!raw || typeof raw.event !== 'string') {
    return null;
  }
  const payload: IEventPayload = { ...(raw.payload ?? {}) };
  if (sessionId && !payload.sessionId) {
    payload.sessionId = sessionId;
  }
  return {
    type: 'event',
    event: raw.event,
    payload,
    seq: typeof raw.seq === 'number' ? raw.seq : undefined,
    stateVersion: raw.stateVersion
  };
}

/** The mime bundles a tool result carries (`payload.displays`), normalised. */
export function displaysOf(payload: IEventPayload): IDisplayBundle[] {
  const raw: unknown = payload.displays ?? payload.output?.displays;
  if (!Array.isArray(raw)) {
    return [];
  }
  const bundles: IDisplayBundle[] = [];
  for (const item of raw) {
    if (!item || typeof item !== 'object') {
      continue;
    }
    // Either display_data content ({data, metadata}) or a bare mime bundle.
    if ('data' in item && typeof item.data === 'object' && item.data) {
      bundles.push({ data: item.data, metadata: item.metadata ?? {} });
    } else {
      bundles.push({ data: item as Record<string, unknown>, metadata: {} });
    }
  }
  return bundles;
}
