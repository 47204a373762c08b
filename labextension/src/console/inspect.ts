/**
 * Parts the Audit, Replay and Metrics panels share: error lines, the server's reachability,
 * redaction made visible, and local times.
 */
import { TranslationBundle } from '@jupyterlab/translation';

import { errorBody } from '../gates';
import { GatewayError } from '../protocol';
import { ConnectionStatus, IOpenFoalClient } from '../tokens';
import { h } from '../widgets/dom';

/** What the redactor puts in place of a secret. */
export const REDACTION_MASK = '[REDACTED]';

/** "CODE: message (trace …)" for a failed request. */
export function errorLine(reason: unknown, trans: TranslationBundle): string {
  const error = errorBody(reason);
  const trace = error.traceId
    ? ` (${trans.__('trace %1', error.traceId)})`
    : '';
  return `${error.code}: ${error.message}${trace}`;
}

/** A `<pre>` of a JSON value (or text) whose redactions show as marked spans. */
export function redactedBlock(value: unknown, className: string): HTMLElement {
  const text =
    typeof value === 'string' ? value : JSON.stringify(value ?? null, null, 2);
  const pre = h('pre', { class: className });
  const parts = text.split(REDACTION_MASK);
  parts.forEach((part, n) => {
    if (n > 0) {
      pre.append(
        h(
          'mark',
          { class: 'jp-OpenFoal-redacted', 'data-redacted': 'true' },
          REDACTION_MASK
        )
      );
    }
    pre.append(part);
  });
  return pre;
}

/**
 * Connect if needed, but fail at once while the server is away (the client keeps
 * reconnecting meanwhile), and after `timeoutMs` of a first connect that does not come.
 */
export async function ensureConnected(
  client: IOpenFoalClient,
  trans: TranslationBundle,
  timeoutMs = 15_000
): Promise<void> {
  const away = () =>
    new GatewayError({
      code: 'INTERNAL_ERROR',
      message: trans.__('The OpenFoal server cannot be reached.'),
      retryable: true
    });
  if (client.status === 'reconnecting' || client.status === 'closed') {
    throw away();
  }
  let timer = 0;
  try {
    await Promise.race([
      client.connect(),
      new Promise<never>((_, reject) => {
        timer = window.setTimeout(() => reject(away()), timeoutMs);
      })
    ]);
  } finally {
    window.clearTimeout(timer);
  }
}

/** A local date and time for an ISO string. */
export function localTime(iso: unknown): string {
  if (typeof iso !== 'string') {
    return '';
  }
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso : new Date(t).toLocaleString();
}

/**
 * A line that says when the gateway cannot be reached, kept up to date from the client's
 * connection status (the panel's content stays on screen meanwhile).
 */
export class ServerLine {
  constructor(
    private readonly _client: IOpenFoalClient,
    private readonly _trans: TranslationBundle
  ) {
    this.node = h('div', {
      class: 'jp-OpenFoal-serverLine',
      role: 'status',
      'aria-live': 'polite'
    });
    this._client.statusChanged.connect(this._update, this);
    this._update(this._client, this._client.status);
  }

  /** The line's element. */
  readonly node: HTMLElement;

  /** Stop following the client. */
  dispose(): void {
    this._client.statusChanged.disconnect(this._update, this);
  }

  private _update(_: IOpenFoalClient, status: ConnectionStatus): void {
    const gone = status === 'reconnecting' || status === 'closed';
    this.node.dataset.state = status;
    this.node.textContent = gone
      ? this._trans.__(
          'The OpenFoal server cannot be reached; showing the last answer.'
        )
      : '';
    this.node.hidden = !gone;
  }
}
