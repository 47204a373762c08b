/**
 * What the chat shows: entries built from live events and from a stored transcript.
 */
import {
  IChatMessage,
  IDisplayBundle,
  IEventFrame,
  ToolStatus,
  displaysOf
} from './protocol';
import { IGateItem } from './gates';

/** A message the user sent (a chat command too). */
export interface IUserEntry {
  kind: 'user';
  id: string;
  text: string;
}

/** Text from the agent, streamed in by `agent.delta`. */
export interface IAssistantEntry {
  kind: 'assistant';
  id: string;
  runId?: string;
  text: string;
  streaming: boolean;
}

/** One tool call and, once known, its result. */
export interface IToolEntry {
  kind: 'tool';
  id: string;
  runId?: string;
  toolName: string;
  args: unknown;
  status: 'running' | 'waiting_gate' | ToolStatus;
  runtimeMode?: string;
  output?: string;
  durationMs?: number;
  error?: { code?: string; message?: string };
  displays: IDisplayBundle[];
  /** The gate raised for this call, kept in step with `policy-gate.*` events. */
  gate?: IGateItem;
}

/** A failure with its code and trace id. */
export interface IErrorEntry {
  kind: 'error';
  id: string;
  runId?: string;
  code: string;
  message: string;
  traceId?: string;
}

/** A short line about the session (stopped, mode changed, compaction). */
export interface INoticeEntry {
  kind: 'notice';
  id: string;
  text: string;
}

/** Anything the chat list shows. */
export type ChatEntry =
  IUserEntry | IAssistantEntry | IToolEntry | IErrorEntry | INoticeEntry;

/** Text of a tool output, whatever shape the server gave it. */
export function outputText(output: unknown): string {
  if (output === undefined || output === null) {
    return '';
  }
  if (typeof output === 'string') {
    return output;
  }
  if (typeof output === 'object' && 'text' in (output as any)) {
    return String((output as any).text ?? '');
  }
  return JSON.stringify(output, null, 2);
}

/** Rebuild entries from a stored transcript (`sessions.get` with `includeMessages`). */
export function entriesFromMessages(messages: IChatMessage[]): ChatEntry[] {
  const entries: ChatEntry[] = [];
  const tools = new Map<string, IToolEntry>();
  messages.forEach((message, index) => {
    const id = `m${index}`;
    if (message.role === 'user') {
      entries.push({ kind: 'user', id, text: message.content ?? '' });
    } else if (message.role === 'assistant') {
      if (message.content) {
        entries.push({
          kind: 'assistant',
          id,
          text: message.content,
          streaming: false
        });
      }
      for (const call of message.tool_calls ?? []) {
        const tool: IToolEntry = {
          kind: 'tool',
          id: call.id,
          toolName: call.name,
          args: call.arguments ?? {},
          status: 'success',
          displays: []
        };
        tools.set(call.id, tool);
        entries.push(tool);
      }
    } else if (message.role === 'tool') {
      const tool = tools.get(message.tool_call_id ?? '');
      if (tool) {
        tool.output = message.content ?? '';
        tool.status = (message.status as ToolStatus) ?? 'success';
        tool.durationMs = message.durationMs as number | undefined;
        tool.displays = displaysOf(message as any);
      }
    } else if (message.role === 'system' && message.kind === 'compaction') {
      entries.push({ kind: 'notice', id, text: 'compaction' });
    }
  });
  return entries;
}

/**
 * Apply one run event to the entries; returns the indices that changed.
 *
 * Mutates `entries` in place so that widgets can re-render only what changed.
 */
export function applyRunEvent(
  entries: ChatEntry[],
  frame: IEventFrame
): { added: number[]; updated: number[] } {
  const p = frame.payload;
  const runId = p.runId;
  const added: number[] = [];
  const updated: number[] = [];
  const push = (entry: ChatEntry) => {
    entries.push(entry);
    added.push(entries.length - 1);
  };
  switch (frame.event) {
    case 'agent.delta': {
      const last = entries[entries.length - 1];
      if (
        last &&
        last.kind === 'assistant' &&
        last.streaming &&
        last.runId === runId
      ) {
        last.text += String(p.delta ?? '');
        updated.push(entries.length - 1);
      } else {
        push({
          kind: 'assistant',
          id: `a_${runId}_${frame.seq ?? entries.length}`,
          runId,
          text: String(p.delta ?? ''),
          streaming: true
        });
      }
      break;
    }
    case 'agent.tool_call': {
      endStreaming(entries, runId, updated);
      push({
        kind: 'tool',
        id: String(p.toolCallId),
        runId,
        toolName: String(p.toolName ?? ''),
        args: p.args ?? {},
        status: 'running',
        runtimeMode: p.runtimeMode,
        displays: []
      });
      break;
    }
    case 'agent.tool_result': {
      const index = findTool(entries, String(p.toolCallId));
      const tool: IToolEntry =
        index >= 0
          ? (entries[index] as IToolEntry)
          : {
              kind: 'tool',
              id: String(p.toolCallId),
              runId,
              toolName: String(p.toolName ?? ''),
              args: {},
              status: 'running',
              displays: []
            };
      tool.status = p.status ?? 'success';
      tool.output = outputText(p.output);
      tool.durationMs = p.durationMs;
      tool.error = p.error;
      tool.displays = displaysOf(p);
      if (index >= 0) {
        updated.push(index);
      } else {
        push(tool);
      }
      break;
    }
    case 'policy-gate.requested':
    case 'policy-gate.resolved': {
      const index = findTool(entries, String(p.gate?.toolCallId));
      if (index >= 0) {
        const tool = entries[index] as IToolEntry;
        tool.gate = p.gate as IGateItem;
        if (frame.event === 'policy-gate.requested') {
          tool.status = 'waiting_gate';
        } else if (tool.status === 'waiting_gate') {
          // An approved call runs on; its result event sets the final status.
          tool.status = p.gate.status === 'approved' ? 'running' : 'rejected';
        }
        updated.push(index);
      }
      break;
    }
    case 'agent.completed': {
      endStreaming(entries, runId, updated);
      break;
    }
    case 'agent.failed': {
      endStreaming(entries, runId, updated);
      if (p.aborted) {
        // A stop the user asked for is no error; the stop answer may have noted it already.
        const id = stoppedId(runId);
        if (!entries.some(e => e.id === id)) {
          push({ kind: 'notice', id, text: 'stopped' });
        }
        break;
      }
      const error = p.error ?? {};
      push({
        kind: 'error',
        id: `e_${runId}_${frame.seq ?? entries.length}`,
        runId,
        code: String(error.code ?? 'INTERNAL_ERROR'),
        message: String(error.message ?? ''),
        traceId: error.traceId ?? p.traceId
      });
      break;
    }
    default:
      break;
  }
  return { added, updated };
}

/** The id of the "stopped" notice of a run, shared by the abort answer and the event. */
export function stoppedId(runId: string | undefined): string {
  return `stopped_${runId}`;
}

function findTool(entries: ChatEntry[], toolCallId: string): number {
  for (let i = entries.length - 1; i >= 0; i--) {
    const entry = entries[i];
    if (entry.kind === 'tool' && entry.id === toolCallId) {
      return i;
    }
  }
  return -1;
}

function endStreaming(
  entries: ChatEntry[],
  runId: string | undefined,
  updated: number[]
): void {
  entries.forEach((entry, index) => {
    if (
      entry.kind === 'assistant' &&
      entry.streaming &&
      entry.runId === runId
    ) {
      entry.streaming = false;
      updated.push(index);
    }
  });
}
