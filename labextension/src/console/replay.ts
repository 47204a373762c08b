/**
 * The Replay panel: one run's `audit.replay` timeline (messages, tool calls with outputs,
 * gate decisions with who and when, audit entries) and the policy version in force.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { refreshIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { IAuditReplayResult } from '../protocol.generated';
import { IOpenFoalClient } from '../tokens';
import { h } from '../widgets/dom';
import { iconButton } from '../widgets/header';
import {
  ServerLine,
  ensureConnected,
  errorLine,
  localTime,
  redactedBlock
} from './inspect';

/** One item of the timeline, as `audit.replay` sends it. */
type Step = Record<string, any>;

/** The kind of a step as the panel labels it (`data-step`). */
export function stepKind(step: Step): string {
  if (step.kind === 'event') {
    switch (step.event) {
      case 'agent.tool_call':
        return 'tool-call';
      case 'agent.tool_result':
        return 'tool-result';
      case 'policy-gate.requested':
      case 'policy-gate.resolved':
        return 'gate';
      default:
        return 'event';
    }
  }
  return String(step.kind ?? 'unknown');
}

/** Shows the timeline of one run; a failed reload keeps the last timeline on screen. */
export class ReplayPanel extends Widget {
  constructor(options: ReplayPanel.IOptions) {
    super();
    this._client = options.client;
    this._trans = options.trans;
    this.runId = options.runId;
    const trans = this._trans;
    this.addClass('jp-OpenFoal-replay');
    this.addClass('jp-OpenFoal-console');
    this.node.dataset.run = this.runId;
    this.node.setAttribute('role', 'region');
    this.node.setAttribute(
      'aria-label',
      trans.__('Replay of run %1', this.runId)
    );
    const refresh = iconButton(refreshIcon, trans.__('Reload'), 'refresh');
    refresh.addEventListener('click', () => void this.refresh());
    this._head = h('div', { class: 'jp-OpenFoal-replayHead' });
    this._status = h('div', {
      class: 'jp-OpenFoal-consoleStatus',
      role: 'status',
      'aria-live': 'polite'
    });
    this._server = new ServerLine(this._client, trans);
    this._list = h('ol', {
      class: 'jp-OpenFoal-replaySteps',
      'aria-label': trans.__('Timeline')
    });
    this.node.append(
      h(
        'div',
        { class: 'jp-OpenFoal-consoleFilters' },
        h('strong', {}, trans.__('Run %1', this.runId)),
        refresh
      ),
      this._server.node,
      this._status,
      this._head,
      h('div', { class: 'jp-OpenFoal-consoleScroll' }, this._list)
    );
  }

  /** The run shown. */
  readonly runId: string;

  /** Load the timeline from `audit.replay`. */
  async refresh(): Promise<void> {
    this._status.textContent = this._trans.__('Loading…');
    this._status.dataset.state = 'loading';
    try {
      await ensureConnected(this._client, this._trans);
      const replay = await this._client.request<IAuditReplayResult>(
        'audit.replay',
        { runId: this.runId }
      );
      this._render(replay);
      this._status.textContent = this._trans.__(
        '%1 steps',
        replay.events.length
      );
      this._status.dataset.state = 'ready';
    } catch (reason) {
      this._status.textContent = errorLine(reason, this._trans);
      this._status.dataset.state = 'error';
    }
  }

  dispose(): void {
    if (!this.isDisposed) {
      this._server.dispose();
    }
    super.dispose();
  }

  private _render(replay: IAuditReplayResult): void {
    const trans = this._trans;
    const run = (replay.events.find(s => s.kind === 'run') ?? {}) as Step;
    const policy = run.policy as Step | null | undefined;
    const fact = (label: string, value: unknown, key: string) =>
      h(
        'div',
        { class: 'jp-OpenFoal-replayFact', 'data-fact': key },
        h('span', { class: 'jp-OpenFoal-replayLabel' }, label),
        h(
          'span',
          {},
          value === null || value === undefined ? '—' : String(value)
        )
      );
    this._head.replaceChildren(
      fact(trans.__('Status'), run.status, 'status'),
      fact(trans.__('Session'), run.sessionId, 'session'),
      fact(trans.__('Trace'), run.traceId, 'trace'),
      fact(trans.__('Model'), modelName(run.model), 'model'),
      fact(trans.__('Runtime'), run.runtimeMode, 'runtime'),
      fact(trans.__('Policy version'), replay.policyVersion, 'policy-version'),
      fact(
        trans.__('Policy'),
        policy
          ? trans.__(
              'tools %1, high risk %2, bash %3',
              policy.toolDefault,
              policy.highRisk,
              policy.bashMode
            )
          : null,
        'policy'
      ),
      fact(trans.__('Started'), localTime(run.at), 'started'),
      fact(trans.__('Ended'), localTime(run.endedAt), 'ended')
    );
    this._list.replaceChildren(
      ...replay.events.map((step, n) => this._step(step as Step, n))
    );
  }

  private _step(step: Step, n: number): HTMLElement {
    const trans = this._trans;
    const kind = stepKind(step);
    const p = (step.payload ?? {}) as Step;
    let title = '';
    let body: HTMLElement | null = null;
    switch (kind) {
      case 'run':
        title = trans.__('Run started by %1', step.owner);
        body = redactedBlock(step.input ?? '', 'jp-OpenFoal-replayBody');
        break;
      case 'message': {
        const m = (step.message ?? {}) as Step;
        title = trans.__('Message · %1', m.role);
        body = redactedBlock(
          m.content || (m.tool_calls?.length ? m.tool_calls : ''),
          'jp-OpenFoal-replayBody'
        );
        break;
      }
      case 'tool-call':
        title = trans.__('Tool call · %1', p.toolName);
        body = redactedBlock(p.args ?? {}, 'jp-OpenFoal-replayBody');
        break;
      case 'tool-result':
        title = trans.__(
          'Tool result · %1 · %2 · %3 ms',
          p.toolName,
          p.status,
          p.durationMs ?? '—'
        );
        body = redactedBlock(
          p.error ?? p.output ?? '',
          'jp-OpenFoal-replayBody'
        );
        break;
      case 'gate': {
        const gate = (p.gate ?? {}) as Step;
        title =
          step.event === 'policy-gate.requested'
            ? trans.__('Gate requested · %1 · %2', gate.toolName, gate.risk)
            : trans.__(
                'Gate %1 by %2 at %3',
                gate.status,
                gate.resolvedBy ?? '—',
                localTime(gate.resolvedAt)
              );
        body = gate.reason
          ? h(
              'div',
              { class: 'jp-OpenFoal-replayBody' },
              trans.__('Reason: %1', gate.reason)
            )
          : null;
        break;
      }
      case 'audit':
        title = trans.__(
          'Audit · %1 by %2 on %3',
          step.action,
          step.actor,
          step.resource
        );
        body = redactedBlock(step.detail ?? {}, 'jp-OpenFoal-replayBody');
        break;
      default:
        title = String(step.event ?? step.kind);
        body = Object.keys(p).length
          ? redactedBlock(p, 'jp-OpenFoal-replayBody')
          : null;
    }
    return h(
      'li',
      {
        class: 'jp-OpenFoal-replayStep',
        'data-step': kind,
        'data-index': String(n),
        'data-event': step.event ?? undefined
      },
      h(
        'div',
        { class: 'jp-OpenFoal-replayTitle' },
        h('time', { datetime: step.at ?? '' }, localTime(step.at)),
        ' ',
        title
      ),
      body
    );
  }

  private readonly _client: IOpenFoalClient;
  private readonly _trans: TranslationBundle;
  private readonly _head: HTMLElement;
  private readonly _status: HTMLElement;
  private readonly _server: ServerLine;
  private readonly _list: HTMLElement;
}

function modelName(model: unknown): unknown {
  if (model && typeof model === 'object' && 'id' in model) {
    return (model as { id: unknown }).id;
  }
  return model;
}

/** Options of {@link ReplayPanel}. */
export namespace ReplayPanel {
  /** What the panel needs. */
  export interface IOptions {
    client: IOpenFoalClient;
    trans: TranslationBundle;
    runId: string;
  }
}
