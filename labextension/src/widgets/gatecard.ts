/**
 * The approval card of a gated call: what it would do, why it waits, and the decision.
 */
import { UUID } from '@lumino/coreutils';
import { TranslationBundle } from '@jupyterlab/translation';

import {
  GateDecision,
  IGateItem,
  IGatePreview,
  errorBody,
  gateWhy,
  isPending,
  mainArgument
} from '../gates';
import { IErrorBody } from '../protocol';
import { h } from './dom';

/** What a gate card can ask for; the chat and the Approvals panel each provide one. */
export interface IGateActions {
  /** Decide a gate (`policy-gate.resolve`); resolves with the gate as the server has it. */
  resolve(
    gate: IGateItem,
    decision: GateDecision,
    reason: string,
    idempotencyKey: string
  ): Promise<IGateItem>;
  /** Write a `session:<id>` rule allowing the gate's tool, then approve the gate. */
  allowForSession(gate: IGateItem, idempotencyKey: string): Promise<IGateItem>;
  /** Whether the card offers "Allow for this session" (default: yes). */
  canAllowForSession?(gate: IGateItem): boolean;
}

/**
 * The card's DOM: tool, full arguments, rule and risk, reason field, Approve / Reject.
 *
 * With the focus inside the card, Enter approves and Escape rejects (Shift+Enter in the
 * reason field adds nothing: the field is one line).
 */
export class GateCard {
  constructor(
    private readonly _actions: IGateActions,
    private readonly _trans: TranslationBundle
  ) {
    const trans = _trans;
    this.node = h('section', {
      class: 'jp-OpenFoal-gate',
      tabindex: '0',
      role: 'group'
    });
    this._reason = h('input', {
      class: 'jp-OpenFoal-gateReason jp-mod-styled',
      type: 'text',
      placeholder: trans.__('Reason (optional)'),
      'aria-label': trans.__('Reason for the decision (optional)')
    });
    this._approve = h(
      'button',
      {
        type: 'button',
        class: 'jp-OpenFoal-gateApprove jp-mod-styled jp-mod-accept',
        'aria-keyshortcuts': 'Enter'
      },
      trans.__('Approve')
    );
    this._reject = h(
      'button',
      {
        type: 'button',
        class: 'jp-OpenFoal-gateReject jp-mod-styled jp-mod-warn',
        'aria-keyshortcuts': 'Escape'
      },
      trans.__('Reject')
    );
    this._allow = h('button', {
      type: 'button',
      class: 'jp-OpenFoal-gateAllow jp-mod-styled'
    });
    this._approve.addEventListener('click', () => void this.decide('approve'));
    this._allow.addEventListener('click', () => void this.decide('allow'));
    this._reject.addEventListener('click', () => void this.decide('reject'));
    this.node.addEventListener('keydown', event => this._onKey(event));
  }

  /** The card's root element. */
  readonly node: HTMLElement;

  /** The gate shown. */
  get gate(): IGateItem | null {
    return this._gate;
  }

  /** Show a gate's current state. */
  render(gate: IGateItem): void {
    if (this._gate?.status !== gate.status) {
      this._error = null;
    }
    this._gate = gate;
    const trans = this._trans;
    const pending = isPending(gate);
    const why = gateWhy(gate.risk);
    const main = mainArgument(gate.args);
    this.node.dataset.gateId = gate.gateId;
    this.node.dataset.gateStatus = gate.status;
    this.node.setAttribute(
      'aria-label',
      pending
        ? trans.__('Approval needed: %1', gate.toolName)
        : trans.__('Approval of %1: %2', gate.toolName, statusText(trans, gate))
    );
    const rows: Node[] = [
      h(
        'div',
        { class: 'jp-OpenFoal-gateTitle' },
        h('span', { class: 'jp-OpenFoal-gateTool' }, gate.toolName),
        h(
          'span',
          { class: 'jp-OpenFoal-gateStatus', role: 'status' },
          statusText(trans, gate)
        )
      )
    ];
    if (main) {
      rows.push(
        h('div', { class: 'jp-OpenFoal-toolLabel' }, main.name),
        h('pre', { class: 'jp-OpenFoal-gateMain' }, main.value)
      );
    }
    if (gate.preview?.kind === 'file.diff') {
      rows.push(...diffNodes(trans, gate.preview));
    }
    rows.push(
      h('div', { class: 'jp-OpenFoal-toolLabel' }, trans.__('Arguments')),
      h(
        'pre',
        { class: 'jp-OpenFoal-gateArgs' },
        JSON.stringify(gate.args ?? {}, null, 2)
      ),
      h(
        'dl',
        { class: 'jp-OpenFoal-gateWhy' },
        h('dt', {}, trans.__('Risk')),
        h(
          'dd',
          { class: 'jp-OpenFoal-gateRisk' },
          why.risk || trans.__('not high risk')
        ),
        h('dt', {}, trans.__('Rule')),
        h('dd', { class: 'jp-OpenFoal-gateRule' }, why.rule || gate.risk)
      )
    );
    if (pending) {
      this._approve.disabled = this._busy;
      this._reject.disabled = this._busy;
      this._reason.disabled = this._busy;
      this._allow.disabled = this._busy;
      this._allow.hidden = !(this._actions.canAllowForSession?.(gate) ?? true);
      this._allow.textContent = trans.__(
        'Allow %1 for this session',
        gate.toolName
      );
      rows.push(
        this._reason,
        h(
          'div',
          { class: 'jp-OpenFoal-gateButtons' },
          this._approve,
          this._reject,
          this._allow,
          h(
            'span',
            { class: 'jp-OpenFoal-gateHint' },
            trans.__('Enter approves, Escape rejects')
          )
        )
      );
    } else if (gate.reason || gate.resolvedBy) {
      rows.push(
        h(
          'div',
          { class: 'jp-OpenFoal-gateResolved' },
          [
            gate.resolvedBy ? trans.__('by %1', gate.resolvedBy) : '',
            gate.reason ? `: ${gate.reason}` : ''
          ].join('')
        )
      );
    }
    if (this._error) {
      rows.push(errorNode(trans, this._error));
    }
    this.node.replaceChildren(...rows);
  }

  /**
   * Send a decision (`allow`: approve and allow the tool for the rest of the session);
   * the card shows the server's answer or its error.
   */
  async decide(decision: GateDecision | 'allow'): Promise<void> {
    const gate = this._gate;
    if (!gate || !isPending(gate) || this._busy) {
      return;
    }
    // One key per decision attempt: a resend of the same click never decides twice.
    this._key = this._key ?? UUID.uuid4();
    this._busy = true;
    this._error = null;
    this.render(gate);
    try {
      const resolved =
        decision === 'allow'
          ? await this._actions.allowForSession(gate, this._key)
          : await this._actions.resolve(
              gate,
              decision,
              this._reason.value,
              this._key
            );
      this._key = null;
      this._busy = false;
      // A live `policy-gate.resolved` may have been shown already; keep the newest.
      this.render(isPending(this._gate) ? resolved : this._gate!);
    } catch (reason) {
      this._key = null;
      this._busy = false;
      this._error = errorBody(reason);
      this.render(this._gate ?? gate);
    }
  }

  private _onKey(event: KeyboardEvent): void {
    if (!isPending(this._gate) || event.shiftKey || event.altKey) {
      return;
    }
    if (event.target instanceof HTMLButtonElement) {
      return; // a focused button acts on its own key presses
    }
    if (event.key === 'Enter') {
      event.preventDefault();
      event.stopPropagation();
      void this.decide('approve');
    } else if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      void this.decide('reject');
    }
  }

  private _gate: IGateItem | null = null;
  private _busy = false;
  private _key: string | null = null;
  private _error: IErrorBody | null = null;
  private readonly _reason: HTMLInputElement;
  private readonly _approve: HTMLButtonElement;
  private readonly _reject: HTMLButtonElement;
  private readonly _allow: HTMLButtonElement;
}

/** A gate's status in words. */
export function statusText(trans: TranslationBundle, gate: IGateItem): string {
  const labels: Record<string, string> = {
    pending: trans.__('waiting for approval'),
    approved: trans.__('approved'),
    rejected: trans.__('rejected'),
    expired: trans.__('expired')
  };
  return labels[gate.status] ?? gate.status;
}

/** A server error with its code and trace id. */
function errorNode(trans: TranslationBundle, error: IErrorBody): HTMLElement {
  return h(
    'div',
    { class: 'jp-OpenFoal-gateError', role: 'alert' },
    h('span', { class: 'jp-OpenFoal-errorCode' }, error.code),
    h('span', { class: 'jp-OpenFoal-errorMessage' }, error.message),
    error.traceId
      ? h(
          'span',
          { class: 'jp-OpenFoal-errorTrace' },
          trans.__('trace %1', error.traceId)
        )
      : ''
  );
}

/** The change a `file.write` would make: a summary line and the unified diff, coloured. */
export function diffNodes(
  trans: TranslationBundle,
  preview: IGatePreview
): HTMLElement[] {
  const summary = [
    preview.exists
      ? trans.__('Changes to %1', preview.path)
      : trans.__('New file %1', preview.path),
    preview.note
      ? ''
      : trans.__(
          '+%1 -%2',
          String(preview.added ?? 0),
          String(preview.removed ?? 0)
        )
  ]
    .filter(Boolean)
    .join(' · ');
  const nodes: HTMLElement[] = [
    h(
      'div',
      { class: 'jp-OpenFoal-toolLabel jp-OpenFoal-gateDiffTitle' },
      summary
    )
  ];
  if (preview.note) {
    nodes.push(
      h(
        'div',
        { class: 'jp-OpenFoal-gateDiffNote' },
        trans.__('No diff: %1', preview.note)
      )
    );
    return nodes;
  }
  const diff = preview.diff ?? '';
  if (!diff) {
    nodes.push(
      h(
        'div',
        { class: 'jp-OpenFoal-gateDiffNote' },
        trans.__('The file would stay the same.')
      )
    );
    return nodes;
  }
  const pre = h('pre', {
    class: 'jp-OpenFoal-gateDiff',
    role: 'region',
    tabindex: '0',
    'aria-label': trans.__('Diff of %1', preview.path)
  });
  for (const line of diff.split('\n')) {
    if (!line) {
      continue;
    }
    pre.append(h('span', { class: diffLineClass(line) }, line));
  }
  nodes.push(pre);
  if (preview.truncated) {
    nodes.push(
      h(
        'div',
        { class: 'jp-OpenFoal-gateDiffNote' },
        trans.__('The diff is cut here; the arguments hold the whole content.')
      )
    );
  }
  return nodes;
}

function diffLineClass(line: string): string {
  if (line.startsWith('+++') || line.startsWith('---')) {
    return 'jp-OpenFoal-diffFile';
  }
  if (line.startsWith('@@')) {
    return 'jp-OpenFoal-diffHunk';
  }
  if (line.startsWith('+')) {
    return 'jp-OpenFoal-diffAdd';
  }
  if (line.startsWith('-')) {
    return 'jp-OpenFoal-diffDel';
  }
  return 'jp-OpenFoal-diffContext';
}
