/**
 * Wire types of the OpenFoal gateway protocol v1 (PROTOCOL.md), as the panel reads them.
 *
 * Field names are the wire names; clients ignore unknown fields, so every interface
 * is open to extension fields.
 */

/** Where tools run for a session. */
export type RuntimeMode = 'local' | 'cloud';

/** The final status of one tool call. */
export type ToolStatus =
  'success' | 'failed' | 'denied' | 'rejected' | 'timeout';

/** Methods with a side effect: each request carries `params.idempotencyKey`. */
export const SIDE_EFFECT_METHODS: ReadonlySet<string> = new Set([
  'agent.run',
  'agent.abort',
  'runtime.setMode',
  'policy.update',
  'policy-gate.resolve',
  'memory.appendDaily',
  'memory.archive',
  'sync.resolve'
]);

/** The error object of a failed `res` or an `agent.failed` event. */
export interface IErrorBody {
  code: string;
  message: string;
  retryable?: boolean;
  traceId?: string;
  [key: string]: unknown;
}

/** A client request. */
export interface IReqFrame {
  type: 'req';
  id: string;
  method: string;
  params: Record<string, unknown>;
}

/** The answer to one request. */
export interface IResFrame {
  type: 'res';
  id: string;
  ok: boolean;
  payload?: any;
  error?: IErrorBody;
}

/** A server-pushed event; `seq` numbers the events of one session. */
export interface IEventFrame {
  type?: 'event';
  event: string;
  payload: IEventPayload;
  seq?: number;
  stateVersion?: number;
}

/** Fields every event payload may carry. */
export interface IEventPayload {
  sessionId?: string;
  runId?: string;
  traceId?: string;
  [key: string]: any;
}

/** The payload of a successful `connect`. */
export interface IConnectPayload {
  protocolVersion: string;
  serverTime?: string;
  user?: { name: string };
  workspaceId?: string;
  role?: 'local' | 'cloud';
  features?: string[];
  [key: string]: unknown;
}

/** A conversation, as `sessions.list`, `sessions.get` and `session.updated` give it. */
export interface ISession {
  id: string;
  sessionKey?: string;
  title?: string;
  preview?: string;
  owner?: string;
  status?: 'idle' | 'running' | 'waiting_gate';
  runtimeMode?: RuntimeMode;
  pendingRuntimeMode?: RuntimeMode | null;
  syncState?: 'local_only' | 'syncing' | 'synced' | 'conflict';
  contextUsage?: number;
  compactionCount?: number;
  createdAt?: string;
  updatedAt?: string;
  [key: string]: unknown;
}

/** A transcript entry of `sessions.get` with `includeMessages`. */
export interface IChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content?: string;
  tool_calls?: {
    id: string;
    name: string;
    arguments?: Record<string, unknown>;
  }[];
  tool_call_id?: string | null;
  name?: string | null;
  kind?: string | null;
  [key: string]: unknown;
}

/** The payload of `sessions.get`. */
export interface ISessionsGetPayload {
  session: ISession;
  messages?: IChatMessage[];
  events?: IEventFrame[];
  lastSeq?: number;
  [key: string]: unknown;
}

/** The payload of `agent.run`. */
export interface IRunAccepted {
  runId: string;
  sessionId: string;
  status: string;
  [key: string]: unknown;
}

/** The payload of `runtime.setMode`. */
export interface ISetModeResult {
  sessionId: string;
  runtimeMode: RuntimeMode;
  status: 'applied' | 'queued-change';
  effectiveOn: 'now' | 'next_turn';
}

/** One rich output: a Jupyter mime bundle with optional metadata. */
export interface IDisplayBundle {
  data: Record<string, unknown>;
  metadata?: Record<string, unknown>;
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
