/**
 * Wire types of the OpenFoal gateway protocol, generated from the pydantic models'
 * JSON Schema by scripts/gen_protocol_ts.py. Do not edit: change the models in
 * openfoal_kernel/protocol/ and regenerate (a test fails when this file drifts).
 */

/** `agent.accepted`; `continues`/`gateId` on a run continued after a gate. */
export interface IAcceptedPayload {
  sessionId: string;
  runId: string;
  traceId: string;
  runtimeMode: "local" | "cloud";
  model: string;
  notebookPath?: string | null;
  continues?: string | null;
  gateId?: string | null;
  [key: string]: unknown;
}

/** `agent.abort`. */
export interface IAgentAbortParams {
  idempotencyKey: string;
  runId: string;
  [key: string]: unknown;
}

/** `agent.abort`: `aborted`, or the final status of a run that had already ended. */
export interface IAgentAbortResult {
  runId: string;
  status: string;
  [key: string]: unknown;
}

/** `agent.run`: one turn of a session (a new session when neither id nor key is given). */
export interface IAgentRunParams {
  idempotencyKey: string;
  sessionId?: string | null;
  sessionKey?: string | null;
  input: string;
  runtimeMode?: "local" | "cloud" | null;
  model?: string | IModelChoice | null;
  [key: string]: unknown;
}

/** `agent.run`: the run is accepted; its events follow. */
export interface IAgentRunResult {
  runId: string;
  sessionId: string;
  status?: "accepted";
  [key: string]: unknown;
}

/** One audited action, with the trace it belongs to. */
export interface IAuditEntry {
  id: string;
  at?: string;
  actor: string;
  action: string;
  resource: string;
  sessionId?: string | null;
  runId?: string | null;
  traceId: string;
  detail?: Record<string, unknown>;
  [key: string]: unknown;
}

/** `audit.query`. */
export interface IAuditQueryParams {
  from?: string | null;
  to?: string | null;
  actor?: string | null;
  action?: string | null;
  sessionId?: string | null;
  runId?: string | null;
  traceId?: string | null;
  limit?: number;
  cursor?: string | null;
  [key: string]: unknown;
}

/** `audit.query`: one page, newest first. */
export interface IAuditQueryResult {
  items: IAuditEntry[];
  nextCursor?: string | null;
  [key: string]: unknown;
}

/** `audit.replay`. */
export interface IAuditReplayParams {
  runId: string;
  [key: string]: unknown;
}

/** `audit.replay`: the run's timeline (run, message, event and audit entries, in order). */
export interface IAuditReplayResult {
  runId: string;
  policyVersion?: number | null;
  events: (Record<string, unknown>)[];
  [key: string]: unknown;
}

/** Optional credentials inside `connect`. */
export interface IAuthParams {
  token?: string | null;
  [key: string]: unknown;
}

/** One transcript entry. */
export interface IChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  content?: string;
  tool_calls?: IToolCall[];
  tool_call_id?: string | null;
  name?: string | null;
  kind?: string | null;
  [key: string]: unknown;
}

/** Who is connecting. */
export interface IClientInfo {
  name: string;
  version?: string;
  [key: string]: unknown;
}

/** `agent.completed`; `silent` for a memory flush run. */
export interface ICompletedPayload {
  sessionId: string;
  runId: string;
  traceId: string;
  status?: "completed";
  usage: IUsage;
  summary?: string | null;
  silent?: boolean | null;
  [key: string]: unknown;
}

/** `connect`: the first frame of every connection. */
export interface IConnectParams {
  client: IClientInfo;
  auth?: IAuthParams | null;
  workspaceId?: string | null;
  protocol?: IProtocolRange | null;
  [key: string]: unknown;
}

/** `connect`. */
export interface IConnectResult {
  protocolVersion: string;
  serverTime: string;
  user: IUserInfo;
  workspaceId: string;
  role: "local" | "cloud";
  features: string[];
  [key: string]: unknown;
}

/** An outbox chunk the cloud kept refusing on its content. */
export interface IDeadLetter {
  id: number;
  kind: "sessions" | "runs" | "gates" | "policies" | "events" | "messages" | "tool_runs" | "audit";
  rows: number;
  attempts: number;
  error?: string | null;
  createdAt: string;
  [key: string]: unknown;
}

/** `agent.delta`: the next piece of the answer's text. */
export interface IDeltaPayload {
  sessionId: string;
  runId: string;
  traceId: string;
  delta: string;
  [key: string]: unknown;
}

/** One rich output: a Jupyter mime bundle with its metadata (display_data content). */
export interface IDisplayBundle {
  data: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  [key: string]: unknown;
}

/** The error object of a failed `res` or an `agent.failed` event. */
export interface IErrorBody {
  code: string;
  message: string;
  retryable?: boolean;
  traceId?: string;
  [key: string]: unknown;
}

/** A server-pushed event; `seq` numbers the events of one session. */
export interface IEventFrame {
  type?: "event";
  event: string;
  payload: Record<string, unknown>;
  seq?: number | null;
  stateVersion?: number | null;
}

/** `agent.failed`; `aborted` after `agent.abort`, `interrupted` after a crash. */
export interface IFailedPayload {
  sessionId: string;
  runId: string;
  traceId: string;
  error: IErrorBody;
  aborted?: boolean | null;
  interrupted?: boolean | null;
  silent?: boolean | null;
  [key: string]: unknown;
}

/** A tool call waiting for (or resolved by) a human decision. */
export interface IGateItem {
  gateId: string;
  sessionId: string;
  runId: string;
  toolCallId: string;
  toolName: string;
  args: Record<string, unknown>;
  argsFingerprint: string;
  risk: string;
  status?: "pending" | "approved" | "rejected" | "expired";
  decision?: "approve" | "reject" | null;
  reason?: string | null;
  requestedBy: string;
  resolvedBy?: string | null;
  createdAt?: string;
  resolvedAt?: string | null;
  preview?: IGatePreview | null;
  [key: string]: unknown;
}

/** `policy-gate.list`. */
export interface IGateListParams {
  status?: "pending" | "approved" | "rejected" | "expired" | null;
  sessionId?: string | null;
  limit?: number;
  toolName?: string | null;
  gateId?: string | null;
  [key: string]: unknown;
}

/** `policy-gate.list`. */
export interface IGateListResult {
  items: IGateItem[];
  [key: string]: unknown;
}

/** `policy-gate.requested` and `policy-gate.resolved`. */
export interface IGatePayload {
  sessionId: string;
  runId?: string | null;
  traceId?: string | null;
  gate: IGateItem;
  [key: string]: unknown;
}

/** What a gated call would change, computed by the gateway when the gate is raised. */
export interface IGatePreview {
  kind?: "file.diff";
  path: string;
  exists?: boolean;
  diff?: string;
  added?: number;
  removed?: number;
  truncated?: boolean;
  note?: string | null;
  [key: string]: unknown;
}

/** `policy-gate.resolve`. */
export interface IGateResolveParams {
  idempotencyKey: string;
  gateId: string;
  decision: "approve" | "reject";
  reason?: string | null;
  [key: string]: unknown;
}

/** `policy-gate.resolve`; `continuedRunId` when approving continued a lost run. */
export interface IGateResolveResult {
  gate: IGateItem;
  continuedRunId?: string | null;
  [key: string]: unknown;
}

/** A Jupyter kernel's connection info (its connection file), on this machine only. */
export interface IKernelConnection {
  transport?: "tcp" | "ipc";
  ip: string;
  shell_port: number;
  iopub_port: number;
  stdin_port: number;
  control_port: number;
  hb_port: number;
  key: string;
  signature_scheme?: "hmac-sha256";
}

/** `kernels.attach` (an OpenFoal extension): an OpenFoal kernel started outside this */
export interface IKernelsAttachParams {
  idempotencyKey: string;
  connection: IKernelConnection;
  [key: string]: unknown;
}

/** `kernels.attach`: the id the gateway knows the attached kernel by. */
export interface IKernelsAttachResult {
  kernelId: string;
  [key: string]: unknown;
}

/** `memory.appendDaily`. */
export interface IMemoryAppendDailyParams {
  idempotencyKey: string;
  text: string;
  alsoLongTerm?: boolean;
  [key: string]: unknown;
}

/** `memory.appendDaily`: the note written to and the bytes appended. */
export interface IMemoryAppendResult {
  path: string;
  bytes: number;
  [key: string]: unknown;
}

/** `memory.archive`. */
export interface IMemoryArchiveParams {
  idempotencyKey: string;
  date?: string | null;
  clearDaily?: boolean;
  [key: string]: unknown;
}

/** `memory.archive`. */
export interface IMemoryArchiveResult {
  archived: boolean;
  path: string;
  [key: string]: unknown;
}

/** `memory.get`. */
export interface IMemoryGetParams {
  path: string;
  [key: string]: unknown;
}

/** `memory.get`. */
export interface IMemoryGetResult {
  path: string;
  content: string;
  [key: string]: unknown;
}

/** The figures of `metrics.summary` (docs/policy.md, "Metrics"); `null`: no data. */
export interface IMetrics {
  runsTotal: number;
  runsCompleted: number;
  runsFailed: number;
  runsInterrupted: number;
  runsAborted: number;
  runsActive: number;
  p50LatencyMs?: number | null;
  p95LatencyMs?: number | null;
  toolCallsTotal: number;
  toolFailures: number;
  toolTimeouts: number;
  toolDenied: number;
  toolRejected: number;
  toolP95DurationMs?: number | null;
  gatesTotal: number;
  gatePending: number;
  gateApproved: number;
  gateRejected: number;
  gateExpired: number;
  gateMedianWaitMs?: number | null;
  [key: string]: unknown;
}

/** One time bucket of a bucketed `metrics.summary`: `[start, end)`. */
export interface IMetricsBucket {
  start: string;
  end: string;
  runsTotal: number;
  runsFailed: number;
  p95LatencyMs?: number | null;
  toolCallsTotal: number;
  toolFailures: number;
  gatesTotal: number;
  gatePending: number;
}

/** `metrics.summary`. */
export interface IMetricsSummaryParams {
  from?: string | null;
  to?: string | null;
  bucket?: number | null;
  [key: string]: unknown;
}

/** `metrics.summary` over `[from, to)`; an open end is `null`. */
export interface IMetricsSummaryResult {
  metrics: IMetrics;
  from?: string | null;
  to?: string | null;
  bucket?: number | null;
  series?: IMetricsBucket[] | null;
  byTool?: IToolCallCount[] | null;
  [key: string]: unknown;
}

/** `runtime.mode_changed`. */
export interface IModeChangedPayload {
  sessionId: string;
  runId?: string | null;
  traceId?: string | null;
  runtimeMode: "local" | "cloud";
  effectiveAt: string;
  [key: string]: unknown;
}

/** A per-run model override: `"provider:model"` or an object with `id`. */
export interface IModelChoice {
  id: string;
  [key: string]: unknown;
}

/** `model.get`: the saved model settings (never the key) and the model runs use. */
export interface IModelGetParams {
  [key: string]: unknown;
}

/** `model.get` and `model.update`: the saved settings and what new runs use. */
export interface IModelGetResult {
  saved?: ISavedModel | null;
  active?: string | null;
  source?: "config" | "saved" | "none";
  canEdit?: boolean;
  [key: string]: unknown;
}

/** Why a model test failed. */
export interface IModelTestError {
  code: string;
  message: string;
  status?: number | null;
  [key: string]: unknown;
}

/** `model.test`: call the provider once with these settings, the saved ones filling gaps. */
export interface IModelTestParams {
  provider?: "openai" | "anthropic" | "demo" | null;
  model?: string | null;
  baseUrl?: string | null;
  apiKey?: string | null;
  [key: string]: unknown;
}

/** `model.test`: whether one call to the provider answered. */
export interface IModelTestResult {
  ok: boolean;
  model: string;
  latencyMs: number;
  reply?: string | null;
  error?: IModelTestError | null;
  [key: string]: unknown;
}

/** `model.update`: save the model settings in the owner's Jupyter config (owner only). */
export interface IModelUpdateParams {
  idempotencyKey: string;
  provider: "openai" | "anthropic" | "demo";
  model: string;
  baseUrl?: string | null;
  apiKey?: string | null;
  clearKey?: boolean;
  [key: string]: unknown;
}

/** Hosts the tools may reach (patterns such as `api.example.com` or `*.example.org`). */
export interface INetworkPolicy {
  allow?: string[];
  [key: string]: unknown;
}

/** What the agent may do, versioned per scope. */
export interface IPolicy {
  scopeKey?: string;
  toolDefault?: "allow" | "deny" | "gate";
  highRisk?: "allow" | "deny" | "gate";
  bashMode?: "sandbox" | "host";
  tools?: Record<string, "allow" | "deny" | "gate">;
  network?: INetworkPolicy;
  gateTimeoutSec?: number;
  version?: number;
  updatedAt?: string;
  updatedBy?: string;
  sandboxDegrade?: "local" | "read-only" | "fail" | null;
  [key: string]: unknown;
}

/** `policy.get` `diff`: the patchable fields that differ between two versions. */
export interface IPolicyDiff {
  from: number;
  to: number;
  changes: Record<string, IPolicyFieldChange>;
}

/** `policy.get` `diff`: the two versions of the scope to compare (either order). */
export interface IPolicyDiffRange {
  from: number;
  to: number;
}

/** One changed field of a policy diff: its value in the older and in the newer version. */
export interface IPolicyFieldChange {
  from: unknown;
  to: unknown;
}

/** `policy.get` (`history` and `diff` are OpenFoal extensions: the Policy panel). */
export interface IPolicyGetParams {
  scopeKey?: string;
  history?: boolean;
  diff?: IPolicyDiffRange | null;
  [key: string]: unknown;
}

/** `policy.get` and `policy.update` (`history`, `diff`: when asked for). */
export interface IPolicyResult {
  policy: IPolicy;
  history?: IPolicy[] | null;
  diff?: IPolicyDiff | null;
  [key: string]: unknown;
}

/** `policy.update`. */
export interface IPolicyUpdateParams {
  idempotencyKey: string;
  scopeKey?: string;
  patch: Record<string, unknown>;
  expectedVersion?: number | null;
  [key: string]: unknown;
}

/** `policy.updated`: a server-wide event, so no `sessionId`. */
export interface IPolicyUpdatedPayload {
  policy: IPolicy;
  team?: ITeamPolicyRef | null;
  [key: string]: unknown;
}

/** Protocol versions the client speaks (major numbers or semver strings). */
export interface IProtocolRange {
  min?: string | number;
  max?: string | number;
  [key: string]: unknown;
}

/** A client request. */
export interface IReqFrame {
  type: "req";
  id: string;
  method: string;
  params?: Record<string, unknown>;
  [key: string]: unknown;
}

/** The server's answer to one `req`. */
export interface IResFrame {
  type?: "res";
  id: string;
  ok: boolean;
  payload?: Record<string, unknown> | null;
  error?: IErrorBody | null;
}

/** `runtime.setMode`. */
export interface IRuntimeSetModeParams {
  idempotencyKey: string;
  sessionId: string;
  runtimeMode: "local" | "cloud";
  force?: boolean;
  [key: string]: unknown;
}

/** The model settings saved by `model.update`; the key itself is never sent back. */
export interface ISavedModel {
  provider: "openai" | "anthropic" | "demo";
  model: string;
  baseUrl?: string | null;
  hasKey?: boolean;
  updatedAt?: string | null;
  updatedBy?: string | null;
  [key: string]: unknown;
}

/** A conversation: its key, owner, status and context bookkeeping. */
export interface ISession {
  id: string;
  sessionKey: string;
  title?: string;
  preview?: string;
  owner: string;
  status?: "idle" | "running" | "waiting_gate" | "queued";
  runtimeMode?: "local" | "cloud";
  pendingRuntimeMode?: "local" | "cloud" | null;
  syncState?: "local_only" | "syncing" | "synced" | "conflict";
  contextUsage?: number;
  compactionCount?: number;
  memoryFlushState?: "idle" | "pending" | "flushed" | "skipped";
  memoryFlushAt?: string | null;
  createdAt?: string;
  updatedAt?: string;
  [key: string]: unknown;
}

/** `session.updated`. */
export interface ISessionUpdatedPayload {
  sessionId: string;
  runId?: string | null;
  traceId?: string | null;
  session: ISession;
  [key: string]: unknown;
}

/** `sessions.delete` (an OpenFoal extension: the console's delete button). */
export interface ISessionsDeleteParams {
  idempotencyKey: string;
  sessionId: string;
  [key: string]: unknown;
}

/** `sessions.delete`. */
export interface ISessionsDeleteResult {
  sessionId: string;
  deleted?: true;
  [key: string]: unknown;
}

/** `sessions.export` (an OpenFoal extension): the session as a Jupyter notebook. */
export interface ISessionsExportParams {
  sessionId: string;
  [key: string]: unknown;
}

/** `sessions.export`: an nbformat-4 notebook (JSON) of the session, with provenance. */
export interface ISessionsExportResult {
  sessionId: string;
  filename: string;
  auditHash: string;
  notebook: Record<string, unknown>;
  [key: string]: unknown;
}

/** `sessions.get`. */
export interface ISessionsGetParams {
  sessionId: string;
  includeMessages?: boolean;
  afterSeq?: number | null;
  limit?: number;
  [key: string]: unknown;
}

/** `sessions.get`; `messages` with `includeMessages`, `events` with `afterSeq`. */
export interface ISessionsGetResult {
  session: ISession;
  messages?: IStoredMessage[] | null;
  events?: IEventFrame[] | null;
  lastSeq?: number | null;
  [key: string]: unknown;
}

/** `sessions.list`. */
export interface ISessionsListParams {
  workspaceId?: string | null;
  limit?: number;
  cursor?: string | null;
  query?: string | null;
  [key: string]: unknown;
}

/** `sessions.list`: one page, newest first. */
export interface ISessionsListResult {
  items: ISession[];
  nextCursor?: string | null;
  [key: string]: unknown;
}

/** `runtime.setMode`. */
export interface ISetModeResult {
  sessionId: string;
  runtimeMode: "local" | "cloud";
  status: "applied" | "queued-change";
  effectiveOn: "now" | "next_turn";
  [key: string]: unknown;
}

/** A transcript entry as `sessions.get` returns it: where it sits and when. */
export interface IStoredMessage {
  role: "system" | "user" | "assistant" | "tool";
  content?: string;
  tool_calls?: IToolCall[];
  tool_call_id?: string | null;
  name?: string | null;
  kind?: string | null;
  idx: number;
  runId?: string | null;
  at: string;
  [key: string]: unknown;
}

/** `POST openfoal/api/sync/batches`: chunks pushed by one user's server. */
export interface ISyncBatch {
  batchId: string;
  schemaVersion: number;
  user: string;
  chunks: ISyncChunk[];
  [key: string]: unknown;
}

/** The cloud's answer to a batch (the same answer again for a replayed batch id). */
export interface ISyncBatchResult {
  batchId: string;
  inserted: number;
  duplicates: number;
  replayed?: boolean;
  conflicts?: ISyncConflictItem[];
  [key: string]: unknown;
}

/** One outbox chunk: `rows` rows of one table, encoded (see the module docstring). */
export interface ISyncChunk {
  id: number;
  kind: "sessions" | "runs" | "gates" | "policies" | "events" | "messages" | "tool_runs" | "audit";
  rows: number;
  data: string;
  [key: string]: unknown;
}

/** A session whose history diverged from the cloud's copy. */
export interface ISyncConflictItem {
  sessionId: string;
  detectedAt: string;
  detail?: Record<string, unknown>;
  [key: string]: unknown;
}

/** `sync.discard`: drop dead letters from the outbox (the local rows stay). */
export interface ISyncDiscardParams {
  idempotencyKey: string;
  ids?: number[] | null;
  [key: string]: unknown;
}

/** A session's full history as chunks (the cloud's copy, or the local one to keep). */
export interface ISyncHistory {
  session: ISession;
  chunks?: ISyncChunk[];
  [key: string]: unknown;
}

/** `sync.pause`: stop pushing (local work goes on and queues in the outbox). */
export interface ISyncPauseParams {
  idempotencyKey: string;
  [key: string]: unknown;
}

/** `sync.resolve`. */
export interface ISyncResolveParams {
  idempotencyKey: string;
  sessionId: string;
  resolution: "keep_local" | "keep_cloud" | "fork";
  [key: string]: unknown;
}

/** `POST openfoal/api/sync/resolutions`: end a conflict on the cloud side. */
export interface ISyncResolveRequest {
  schemaVersion: number;
  user: string;
  sessionId: string;
  resolution: "keep_local" | "keep_cloud" | "fork";
  local?: ISyncHistory | null;
  [key: string]: unknown;
}

/** `sync.resolve`: the session after the resolution (`fork`: also the new copy). */
export interface ISyncResolveResult {
  session: ISession;
  forked?: ISession | null;
  [key: string]: unknown;
}

/** `sync.resume`: push again. */
export interface ISyncResumeParams {
  idempotencyKey: string;
  [key: string]: unknown;
}

/** `sync.retry`: put dead letters back in the queue (`ids` omitted: all of them). */
export interface ISyncRetryParams {
  idempotencyKey: string;
  ids?: number[] | null;
  [key: string]: unknown;
}

/** `sync.state_changed`. */
export interface ISyncStatePayload {
  sessionId: string;
  runId?: string | null;
  traceId?: string | null;
  syncState: "local_only" | "syncing" | "synced" | "conflict";
  detail?: string | Record<string, unknown> | null;
  [key: string]: unknown;
}

/** `sync.status`. */
export interface ISyncStatusParams {
  [key: string]: unknown;
}

/** `sync.status`: where this server's sync stands. */
export interface ISyncStatusResult {
  state: "disabled" | "idle" | "syncing" | "paused" | "backoff" | "cloud";
  lastSyncAt?: string | null;
  pending: number;
  deadLetters?: IDeadLetter[];
  conflicts?: ISyncConflictItem[];
  lagSeconds?: number | null;
  cloudUrl?: string | null;
  lastError?: string | null;
  [key: string]: unknown;
}

/** Which version of the team's policy (pulled from the cloud instance) is in force. */
export interface ITeamPolicyRef {
  version: number;
  updatedBy: string;
  [key: string]: unknown;
}

/** A tool call requested by the model (wire tool name, e.g. `bash.exec`). */
export interface IToolCall {
  id: string;
  name: string;
  arguments?: Record<string, unknown>;
  [key: string]: unknown;
}

/** Calls of one tool in the window (`failures`: failed or timed out). */
export interface IToolCallCount {
  toolName: string;
  calls: number;
  failures: number;
}

/** `agent.tool_call`. */
export interface IToolCallPayload {
  sessionId: string;
  runId: string;
  traceId: string;
  toolCallId: string;
  toolName: string;
  args: Record<string, unknown>;
  runtimeMode: "local" | "cloud";
  [key: string]: unknown;
}

/** `agent.tool_result`; `displays` holds the rich outputs of `python.exec`. */
export interface IToolResultPayload {
  sessionId: string;
  runId: string;
  traceId: string;
  toolCallId: string;
  toolName: string;
  status: "success" | "failed" | "denied" | "rejected" | "timeout";
  output?: unknown;
  durationMs: number;
  error?: IErrorBody | Record<string, unknown> | string | null;
  displays?: IDisplayBundle[] | null;
  [key: string]: unknown;
}

/** Tokens a run used. */
export interface IUsage {
  inputTokens?: number;
  outputTokens?: number;
  [key: string]: unknown;
}

/** Who the server took the client for. */
export interface IUserInfo {
  name: string;
  [key: string]: unknown;
}

/** Methods with a side effect: each request carries `params.idempotencyKey`. */
export const SIDE_EFFECT_METHODS: ReadonlySet<string> = new Set([
  "agent.run",
  "agent.abort",
  "runtime.setMode",
  "sessions.delete",
  "policy.update",
  "policy-gate.resolve",
  "memory.appendDaily",
  "memory.archive",
  "sync.resolve",
  "model.update",
  "sync.pause",
  "sync.resume",
  "sync.retry",
  "sync.discard",
  "kernels.attach"
]);

/** The methods this server serves: params and result type of each. */
export interface IMethods {
  "connect": { params: IConnectParams; result: IConnectResult };
  "agent.run": { params: IAgentRunParams; result: IAgentRunResult };
  "agent.abort": { params: IAgentAbortParams; result: IAgentAbortResult };
  "runtime.setMode": { params: IRuntimeSetModeParams; result: ISetModeResult };
  "sessions.list": { params: ISessionsListParams; result: ISessionsListResult };
  "sessions.get": { params: ISessionsGetParams; result: ISessionsGetResult };
  "sessions.delete": { params: ISessionsDeleteParams; result: ISessionsDeleteResult };
  "policy.get": { params: IPolicyGetParams; result: IPolicyResult };
  "policy.update": { params: IPolicyUpdateParams; result: IPolicyResult };
  "policy-gate.list": { params: IGateListParams; result: IGateListResult };
  "policy-gate.resolve": { params: IGateResolveParams; result: IGateResolveResult };
  "audit.query": { params: IAuditQueryParams; result: IAuditQueryResult };
  "audit.replay": { params: IAuditReplayParams; result: IAuditReplayResult };
  "metrics.summary": { params: IMetricsSummaryParams; result: IMetricsSummaryResult };
  "memory.get": { params: IMemoryGetParams; result: IMemoryGetResult };
  "memory.appendDaily": { params: IMemoryAppendDailyParams; result: IMemoryAppendResult };
  "memory.archive": { params: IMemoryArchiveParams; result: IMemoryArchiveResult };
  "sync.status": { params: ISyncStatusParams; result: ISyncStatusResult };
  "sync.resolve": { params: ISyncResolveParams; result: ISyncResolveResult };
  "sessions.export": { params: ISessionsExportParams; result: ISessionsExportResult };
  "model.get": { params: IModelGetParams; result: IModelGetResult };
  "model.update": { params: IModelUpdateParams; result: IModelGetResult };
  "model.test": { params: IModelTestParams; result: IModelTestResult };
  "sync.pause": { params: ISyncPauseParams; result: ISyncStatusResult };
  "sync.resume": { params: ISyncResumeParams; result: ISyncStatusResult };
  "sync.retry": { params: ISyncRetryParams; result: ISyncStatusResult };
  "sync.discard": { params: ISyncDiscardParams; result: ISyncStatusResult };
  "kernels.attach": { params: IKernelsAttachParams; result: IKernelsAttachResult };
}

/** The payload type of every event. */
export interface IEventPayloads {
  "agent.accepted": IAcceptedPayload;
  "agent.delta": IDeltaPayload;
  "agent.tool_call": IToolCallPayload;
  "agent.tool_result": IToolResultPayload;
  "agent.completed": ICompletedPayload;
  "agent.failed": IFailedPayload;
  "policy-gate.requested": IGatePayload;
  "policy-gate.resolved": IGatePayload;
  "runtime.mode_changed": IModeChangedPayload;
  "session.updated": ISessionUpdatedPayload;
  "policy.updated": IPolicyUpdatedPayload;
  "sync.state_changed": ISyncStatePayload;
}
