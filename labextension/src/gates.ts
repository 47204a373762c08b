/**
 * Gates on the client side: the `GateItem` shape, reading its reason, resolving it.
 */
import { GatewayError, IErrorBody } from './protocol';
import { IOpenFoalClient } from './tokens';

/** A gate's status (PROTOCOL.md `GateItem.status`). */
export type GateStatus = 'pending' | 'approved' | 'rejected' | 'expired';

/** A gated tool call as the gateway sends it (`GateItem`). */
export interface IGateItem {
  gateId: string;
  sessionId: string;
  runId: string;
  toolCallId: string;
  toolName: string;
  args: Record<string, unknown>;
  argsFingerprint?: string;
  risk: string;
  status: GateStatus;
  decision?: 'approve' | 'reject' | null;
  reason?: string | null;
  requestedBy?: string;
  resolvedBy?: string | null;
  createdAt?: string;
  resolvedAt?: string | null;
  /** What the call would change (a `file.write`'s diff), computed by the gateway. */
  preview?: IGatePreview | null;
}

/** A gate's preview (docs/protocol.md, "Gate previews"). */
export interface IGatePreview {
  kind: 'file.diff';
  path: string;
  exists?: boolean;
  /** Unified diff; empty when the call changes nothing. */
  diff?: string;
  added?: number;
  removed?: number;
  truncated?: boolean;
  /** Why there is no diff. */
  note?: string | null;
}

/** A decision on a gate. */
export type GateDecision = 'approve' | 'reject';

/** Why a call was gated: the policy rule that matched and the risk, if any. */
export interface IGateWhy {
  /** `tools.<name>`, `highRisk` or `toolDefault`. */
  rule: string;
  /** The tool's high-risk reason, empty when the call is not high risk. */
  risk: string;
}

const TOOL_RULE = /^policy rule for (\S+): \w+(?: \(high risk: (.*)\))?$/s;

/** Split a gate's `risk` (the policy decision's reason) into rule and risk. */
export function gateWhy(reason: string): IGateWhy {
  const text = reason ?? '';
  const tool = TOOL_RULE.exec(text);
  if (tool) {
    return { rule: `tools.${tool[1]}`, risk: tool[2] ?? '' };
  }
  if (text.startsWith('high risk: ')) {
    return { rule: 'highRisk', risk: text.slice('high risk: '.length) };
  }
  if (text.startsWith('policy default')) {
    return { rule: 'toolDefault', risk: '' };
  }
  return { rule: '', risk: text };
}

/** The argument a person most needs to read: command, code, URL or file path. */
export function mainArgument(
  args: Record<string, unknown> | undefined
): { name: string; value: string } | null {
  for (const name of ['command', 'code', 'url', 'path']) {
    const value = args?.[name];
    if (typeof value === 'string' && value) {
      return { name, value };
    }
  }
  return null;
}

/** Whether a gate still waits for a decision. */
export function isPending(gate: IGateItem | undefined | null): boolean {
  return gate?.status === 'pending';
}

/** The error body of a failed request, whatever failed. */
export function errorBody(reason: unknown): IErrorBody {
  if (reason instanceof GatewayError) {
    return reason.body;
  }
  return { code: 'INTERNAL_ERROR', message: String(reason) };
}

/**
 * Resolve a gate through `policy-gate.resolve`.
 *
 * The idempotency key is fixed by the caller for one decision, so a retry after a
 * lost answer never decides twice. A gate decided elsewhere first answers
 * `VERSION_CONFLICT` with that gate in `details.gate`, which is returned as is.
 */
export async function resolveGate(
  client: IOpenFoalClient,
  options: resolveGate.IOptions
): Promise<IGateItem> {
  const params: Record<string, unknown> = {
    gateId: options.gateId,
    decision: options.decision
  };
  if (options.reason?.trim()) {
    params.reason = options.reason.trim();
  }
  try {
    const res = await client.request<{ gate: IGateItem }>(
      'policy-gate.resolve',
      params,
      { idempotencyKey: options.idempotencyKey }
    );
    return res.gate;
  } catch (reason) {
    const details = (errorBody(reason).details ?? {}) as { gate?: IGateItem };
    if (
      reason instanceof GatewayError &&
      reason.code === 'VERSION_CONFLICT' &&
      details.gate?.gateId === options.gateId
    ) {
      options.onConflict?.(details.gate);
      return details.gate;
    }
    throw reason;
  }
}

/** Options of {@link resolveGate}. */
export namespace resolveGate {
  /** One decision on one gate. */
  export interface IOptions {
    gateId: string;
    decision: GateDecision;
    reason?: string;
    idempotencyKey: string;
    /** Told when someone else decided the gate first (the gate as they left it). */
    onConflict?: (gate: IGateItem) => void;
  }
}

/** List gates (`policy-gate.list`), newest first. */
export async function listGates(
  client: IOpenFoalClient,
  filter: {
    status?: GateStatus | '';
    sessionId?: string;
    toolName?: string;
    gateId?: string;
    limit?: number;
  } = {}
): Promise<IGateItem[]> {
  const params: Record<string, unknown> = { limit: filter.limit ?? 200 };
  if (filter.status) {
    params.status = filter.status;
  }
  if (filter.sessionId) {
    params.sessionId = filter.sessionId;
  }
  if (filter.toolName) {
    params.toolName = filter.toolName;
  }
  if (filter.gateId) {
    params.gateId = filter.gateId;
  }
  const res = await client.request<{ items: IGateItem[] }>(
    'policy-gate.list',
    params
  );
  return res.items ?? [];
}

/** The policy scope of one session's own rules (docs/console.md). */
export function sessionScope(sessionId: string): string {
  return `session:${sessionId}`;
}

/**
 * Allow a tool in one session: `policy.update` of scope `session:<id>` with its `tools`
 * plus `{tool: "allow"}`, against the version read just before (a concurrent change is
 * read again once).
 */
export async function allowToolForSession(
  client: IOpenFoalClient,
  sessionId: string,
  toolName: string
): Promise<void> {
  const scopeKey = sessionScope(sessionId);
  for (let attempt = 0; ; attempt++) {
    const got = await client.request<{ policy: IScopedPolicy }>('policy.get', {
      scopeKey
    });
    // A scope never written answers with the default policy: start from no rules.
    const own = got.policy.scopeKey === scopeKey;
    const tools = own ? { ...(got.policy.tools ?? {}) } : {};
    tools[toolName] = 'allow';
    try {
      await client.request('policy.update', {
        scopeKey,
        patch: { tools },
        expectedVersion: own ? got.policy.version : 0
      });
      return;
    } catch (reason) {
      if (
        attempt > 0 ||
        !(reason instanceof GatewayError) ||
        reason.code !== 'VERSION_CONFLICT'
      ) {
        throw reason;
      }
    }
  }
}

/** The fields of a `Policy` that a session rule reads. */
interface IScopedPolicy {
  scopeKey: string;
  version: number;
  tools?: Record<string, string>;
}
