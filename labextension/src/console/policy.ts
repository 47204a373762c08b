/**
 * The Policy panel: the policy of a scope as a form, its version history and a diff between
 * any two versions. Edits go out with `expectedVersion`, so nothing is silently overwritten.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { refreshIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { errorBody } from '../gates';
import { IEventFrame } from '../protocol';
import { IPolicy, IPolicyDiff } from '../protocol.generated';
import { IOpenFoalClient } from '../tokens';
import { h } from '../widgets/dom';
import { iconButton } from '../widgets/header';
import { errorText } from './sessions';

/** The fields the form edits (the patchable fields of a policy). */
export const POLICY_FIELDS = [
  'toolDefault',
  'highRisk',
  'bashMode',
  'tools',
  'network',
  'gateTimeoutSec'
] as const;

/** A patchable field. */
export type PolicyField = (typeof POLICY_FIELDS)[number];

/** What `policy.get` answers. */
interface IPolicyAnswer {
  policy: IPolicy;
  history?: IPolicy[];
  diff?: IPolicyDiff;
}

const RULES = ['allow', 'gate', 'deny'];

/** The fields of `edited` that differ from `base`: the patch of a save. */
export function policyPatch(
  base: Record<string, unknown>,
  edited: Record<string, unknown>
): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const field of POLICY_FIELDS) {
    if (JSON.stringify(base[field]) !== JSON.stringify(edited[field])) {
      patch[field] = edited[field];
    }
  }
  return patch;
}

/** A value of a diff, short enough for a table cell. */
export function showValue(value: unknown): string {
  if (value === undefined || value === null) {
    return '—';
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The policy of one scope, edited as a form, with its history. */
export class PolicyPanel extends Widget {
  constructor(options: PolicyPanel.IOptions) {
    super();
    this._client = options.client;
    this._trans = options.trans;
    this._scopeKey = options.scopeKey ?? 'default';
    const trans = this._trans;
    this.addClass('jp-OpenFoal-policyPanel');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', trans.__('OpenFoal policy'));

    this._toolDefault = this._ruleSelect(trans.__('Tool default'));
    this._highRisk = this._ruleSelect(trans.__('High-risk rule'));
    this._bashMode = h('select', {
      'data-field': 'bashMode',
      'aria-label': trans.__('Bash mode')
    });
    for (const mode of ['host', 'sandbox']) {
      this._bashMode.append(h('option', { value: mode }, mode));
    }
    this._timeout = h('input', {
      type: 'number',
      min: '1',
      step: '1',
      'data-field': 'gateTimeoutSec',
      'aria-label': trans.__('Gate timeout (seconds)')
    });
    this._network = h('textarea', {
      rows: '4',
      'data-field': 'network',
      'aria-label': trans.__('Network allowlist'),
      placeholder: trans.__('one host, *.domain or host:port per line')
    });
    this._tools = h('div', {
      class: 'jp-OpenFoal-policyTools',
      role: 'list',
      'aria-label': trans.__('Per-tool rules')
    });
    const addTool = h(
      'button',
      {
        type: 'button',
        class: 'jp-OpenFoal-consoleButton',
        'data-action': 'add-tool'
      },
      trans.__('Add tool rule')
    );
    addTool.addEventListener('click', () => {
      this._addToolRow('', 'gate').querySelector('input')?.focus();
      this._onEdit();
    });
    this._save = h(
      'button',
      {
        type: 'submit',
        class: 'jp-OpenFoal-consoleButton jp-mod-accept',
        'data-action': 'save'
      },
      trans.__('Save')
    );
    this._version = h('span', { class: 'jp-OpenFoal-policyVersion' });
    this._status = h('div', {
      class: 'jp-OpenFoal-consoleStatus',
      role: 'status'
    });
    this._conflict = h('div', {
      class: 'jp-OpenFoal-policyConflict',
      role: 'alert',
      hidden: true
    });
    const field = (label: string, control: HTMLElement) =>
      h(
        'label',
        { class: 'jp-OpenFoal-policyField' },
        h('span', {}, label),
        control
      );
    this._form = h(
      'form',
      {
        class: 'jp-OpenFoal-policyForm',
        'aria-label': trans.__('Policy'),
        // the server checks every value and names the field it refuses
        novalidate: true
      },
      field(trans.__('Tool default'), this._toolDefault),
      field(trans.__('High-risk rule'), this._highRisk),
      field(trans.__('Bash mode'), this._bashMode),
      field(trans.__('Gate timeout (seconds)'), this._timeout),
      h(
        'fieldset',
        { class: 'jp-OpenFoal-policyFieldset' },
        h('legend', {}, trans.__('Per-tool rules')),
        this._tools,
        addTool
      ),
      field(trans.__('Network allowlist'), this._network),
      h(
        'div',
        { class: 'jp-OpenFoal-consoleToolbar' },
        this._save,
        this._version
      )
    );
    this._form.addEventListener('submit', event => {
      event.preventDefault();
      void this.save();
    });
    this._form.addEventListener('input', () => this._onEdit());
    this._form.addEventListener('change', () => this._onEdit());

    const reload = iconButton(refreshIcon, trans.__('Reload policy'), 'reload');
    reload.addEventListener('click', () => void this.refresh());

    this._history = h('tbody');
    this._from = h('select', {
      'aria-label': trans.__('Compare from version')
    });
    this._to = h('select', { 'aria-label': trans.__('Compare to version') });
    const compare = h(
      'button',
      {
        type: 'button',
        class: 'jp-OpenFoal-consoleButton',
        'data-action': 'diff'
      },
      trans.__('Show diff')
    );
    compare.addEventListener('click', () => void this.showDiff());
    this._diff = h('div', {
      class: 'jp-OpenFoal-policyDiff',
      'aria-live': 'polite'
    });
    const historyHead = h('tr');
    for (const label of [
      trans.__('Version'),
      trans.__('Saved'),
      trans.__('By')
    ]) {
      historyHead.append(h('th', { scope: 'col' }, label));
    }

    this.node.append(
      h(
        'div',
        { class: 'jp-OpenFoal-consoleToolbar' },
        h('strong', {}, trans.__('Scope %1', this._scopeKey)),
        reload
      ),
      this._conflict,
      this._status,
      this._form,
      h(
        'section',
        {
          class: 'jp-OpenFoal-policyHistory',
          'aria-label': trans.__('Version history')
        },
        h('h3', {}, trans.__('Version history')),
        h(
          'table',
          {
            class: 'jp-OpenFoal-consoleTable',
            'aria-label': trans.__('Versions')
          },
          h('thead', {}, historyHead),
          this._history
        ),
        h(
          'div',
          { class: 'jp-OpenFoal-consoleToolbar' },
          h('label', {}, trans.__('From'), this._from),
          h('label', {}, trans.__('To'), this._to),
          compare
        ),
        this._diff
      )
    );
    this._client.eventReceived.connect(this._onEvent, this);
  }

  /** The policy the form was loaded from (`null` before the first load). */
  get policy(): IPolicy | null {
    return this._loaded;
  }

  /** Whether the form holds edits not saved yet. */
  get dirty(): boolean {
    return this._dirty;
  }

  /** Load the scope's policy into the form (dropping unsaved edits) and its history. */
  async refresh(): Promise<void> {
    this._status.textContent = this._trans.__('Loading…');
    try {
      await this._client.connect();
      const answer = await this._client.request<IPolicyAnswer>('policy.get', {
        scopeKey: this._scopeKey,
        history: true
      });
      this._fill(answer.policy);
      this._showHistory(answer.history ?? [answer.policy]);
      this._conflict.hidden = true;
      this._conflict.replaceChildren();
      this._setStatus('');
    } catch (reason) {
      this._setStatus(errorText(this._trans, reason), true);
    }
  }

  /** Send the edited fields as `policy.update` with the loaded version as `expectedVersion`. */
  async save(): Promise<void> {
    const loaded = this._loaded;
    if (!loaded) {
      return;
    }
    const patch = policyPatch(loaded, this._read());
    if (Object.keys(patch).length === 0) {
      this._setStatus(this._trans.__('Nothing changed.'));
      return;
    }
    this._save.disabled = true;
    this._setStatus(this._trans.__('Saving…'));
    try {
      const answer = await this._client.request<IPolicyAnswer>(
        'policy.update',
        {
          scopeKey: this._scopeKey,
          patch,
          expectedVersion: loaded.version
        }
      );
      this._fill(answer.policy);
      this._setStatus(
        this._trans.__('Saved as version %1.', answer.policy.version)
      );
      await this._loadHistory();
    } catch (reason) {
      const error = errorBody(reason);
      if (error.code === 'VERSION_CONFLICT') {
        await this._showConflict(loaded);
      }
      // the edits stay in the form; nothing was written
      this._setStatus(errorText(this._trans, reason), true);
    } finally {
      this._save.disabled = false;
    }
  }

  /** Show the fields that differ between the versions picked in the history. */
  async showDiff(): Promise<void> {
    const from = Number(this._from.value);
    const to = Number(this._to.value);
    if (!from || !to) {
      return;
    }
    try {
      const answer = await this._client.request<IPolicyAnswer>('policy.get', {
        scopeKey: this._scopeKey,
        diff: { from, to }
      });
      this._diff.replaceChildren(this._diffTable(answer.diff!));
    } catch (reason) {
      this._diff.replaceChildren(
        h(
          'p',
          { class: 'jp-OpenFoal-consoleError' },
          errorText(this._trans, reason)
        )
      );
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._client.eventReceived.disconnect(this._onEvent, this);
    super.dispose();
  }

  private _ruleSelect(label: string, value = 'allow'): HTMLSelectElement {
    const select = h('select', { 'aria-label': label });
    for (const rule of RULES) {
      select.append(
        h('option', { value: rule, selected: rule === value }, rule)
      );
    }
    return select;
  }

  private _addToolRow(name: string, rule: string): HTMLElement {
    const trans = this._trans;
    const input = h('input', {
      type: 'text',
      class: 'jp-OpenFoal-policyToolName',
      value: name,
      placeholder: trans.__('tool name, e.g. bash.exec'),
      'aria-label': trans.__('Tool name')
    });
    input.value = name;
    const select = this._ruleSelect(
      trans.__('Rule for %1', name || trans.__('new tool')),
      rule
    );
    const remove = h(
      'button',
      {
        type: 'button',
        class: 'jp-OpenFoal-consoleButton',
        'data-action': 'remove-tool',
        'aria-label': trans.__(
          'Remove rule for %1',
          name || trans.__('new tool')
        )
      },
      trans.__('Remove')
    );
    const row = h(
      'div',
      { class: 'jp-OpenFoal-policyTool', role: 'listitem' },
      input,
      select,
      remove
    );
    remove.addEventListener('click', () => {
      row.remove();
      this._onEdit();
    });
    this._tools.append(row);
    return row;
  }

  private _fill(policy: IPolicy): void {
    this._loaded = policy;
    this._toolDefault.value = policy.toolDefault ?? 'allow';
    this._highRisk.value = policy.highRisk ?? 'gate';
    this._bashMode.value = policy.bashMode ?? 'host';
    this._timeout.value = String(policy.gateTimeoutSec ?? 900);
    this._network.value = (policy.network?.allow ?? []).join('\n');
    this._tools.replaceChildren();
    for (const [name, rule] of Object.entries(policy.tools ?? {})) {
      this._addToolRow(name, rule as string);
    }
    this._version.textContent = this._trans.__(
      'Version %1, saved by %2 %3',
      policy.version,
      policy.updatedBy ?? '',
      policy.updatedAt ? new Date(policy.updatedAt).toLocaleString() : ''
    );
    this.node.dataset.version = String(policy.version);
    this._dirty = false;
  }

  /** The form as policy fields; a value the form cannot read is sent as typed. */
  private _read(): Record<string, unknown> {
    const tools: Record<string, string> = {};
    for (const row of Array.from(this._tools.children)) {
      const name = row.querySelector('input')?.value.trim() ?? '';
      const rule = row.querySelector('select')?.value ?? 'gate';
      if (name) {
        tools[name] = rule;
      }
    }
    const timeout = this._timeout.value.trim();
    const seconds = Number(timeout);
    return {
      toolDefault: this._toolDefault.value,
      highRisk: this._highRisk.value,
      bashMode: this._bashMode.value,
      tools,
      network: {
        allow: this._network.value
          .split('\n')
          .map(line => line.trim())
          .filter(line => line)
      },
      // the server names the field of a value that is not a whole number of seconds
      gateTimeoutSec:
        timeout !== '' && Number.isInteger(seconds) ? seconds : timeout
    };
  }

  private async _loadHistory(): Promise<void> {
    try {
      const answer = await this._client.request<IPolicyAnswer>('policy.get', {
        scopeKey: this._scopeKey,
        history: true
      });
      this._showHistory(answer.history ?? [answer.policy]);
    } catch (reason) {
      this._diff.replaceChildren(
        h(
          'p',
          { class: 'jp-OpenFoal-consoleError' },
          errorText(this._trans, reason)
        )
      );
    }
  }

  private _showHistory(history: IPolicy[]): void {
    const newest = [...history].reverse();
    this._history.replaceChildren(
      ...newest.map(p =>
        h(
          'tr',
          { 'data-version': String(p.version) },
          h('td', {}, String(p.version)),
          h(
            'td',
            {},
            p.updatedAt ? new Date(p.updatedAt).toLocaleString() : ''
          ),
          h('td', {}, p.updatedBy ?? '')
        )
      )
    );
    for (const [select, pick] of [
      [this._from, newest[1] ?? newest[0]],
      [this._to, newest[0]]
    ] as const) {
      const keep = select.value;
      select.replaceChildren(
        ...newest.map(p =>
          h('option', { value: String(p.version) }, String(p.version))
        )
      );
      select.value =
        keep && newest.some(p => String(p.version) === keep)
          ? keep
          : String(pick?.version ?? '');
    }
  }

  private _diffTable(diff: IPolicyDiff): HTMLElement {
    const trans = this._trans;
    const fields = Object.entries(diff.changes);
    if (fields.length === 0) {
      return h(
        'p',
        { class: 'jp-OpenFoal-consoleEmpty' },
        trans.__('Versions %1 and %2 are the same.', diff.from, diff.to)
      );
    }
    const head = h('tr');
    for (const label of [
      trans.__('Field'),
      trans.__('Version %1', diff.from),
      trans.__('Version %1', diff.to)
    ]) {
      head.append(h('th', { scope: 'col' }, label));
    }
    return h(
      'table',
      {
        class: 'jp-OpenFoal-consoleTable',
        'aria-label': trans.__(
          'Changes from version %1 to %2',
          diff.from,
          diff.to
        )
      },
      h('thead', {}, head),
      h(
        'tbody',
        {},
        ...fields.map(([field, change]) =>
          h(
            'tr',
            { 'data-field': field },
            h('th', { scope: 'row' }, field),
            h('td', {}, showValue(change.from)),
            h('td', {}, showValue(change.to))
          )
        )
      )
    );
  }

  /** A save lost the race: show what changed underneath, offer a reload. */
  private async _showConflict(mine: IPolicy): Promise<void> {
    const trans = this._trans;
    let table: HTMLElement | null = null;
    let current: IPolicy | null = null;
    try {
      const head = await this._client.request<IPolicyAnswer>('policy.get', {
        scopeKey: this._scopeKey
      });
      current = head.policy;
      const answer = await this._client.request<IPolicyAnswer>('policy.get', {
        scopeKey: this._scopeKey,
        diff: { from: mine.version, to: current.version }
      });
      table = this._diffTable(answer.diff!);
    } catch (reason) {
      table = h('p', {}, errorText(trans, reason));
    }
    const reload = h(
      'button',
      {
        type: 'button',
        class: 'jp-OpenFoal-consoleButton jp-mod-accept',
        'data-action': 'reload-latest'
      },
      trans.__('Reload the latest version')
    );
    reload.addEventListener('click', () => void this.refresh());
    this._conflict.replaceChildren(
      h(
        'p',
        {},
        current
          ? trans.__(
              'The policy changed while you edited it: version %1 (yours was %2), saved by %3. Your edits were not saved and are still in the form.',
              current.version,
              mine.version,
              current.updatedBy ?? ''
            )
          : trans.__('The policy changed while you edited it.')
      ),
      table,
      reload
    );
    this._conflict.hidden = false;
    reload.focus();
  }

  private _onEdit(): void {
    this._dirty = true;
  }

  private _setStatus(text: string, error = false): void {
    this._status.textContent = text;
    if (error) {
      this._status.dataset.error = 'true';
    } else {
      delete this._status.dataset.error;
    }
  }

  private _onEvent(_: IOpenFoalClient, frame: IEventFrame): void {
    if (frame.event !== 'policy.updated') {
      return;
    }
    const policy = frame.payload?.policy as IPolicy | undefined;
    if (!policy || policy.scopeKey !== this._loaded?.scopeKey) {
      return;
    }
    void this._loadHistory();
    if (!this._dirty && (policy.version ?? 0) > (this._loaded?.version ?? 0)) {
      this._fill(policy);
    }
  }

  private readonly _client: IOpenFoalClient;
  private readonly _trans: TranslationBundle;
  private readonly _scopeKey: string;
  private readonly _form: HTMLFormElement;
  private readonly _toolDefault: HTMLSelectElement;
  private readonly _highRisk: HTMLSelectElement;
  private readonly _bashMode: HTMLSelectElement;
  private readonly _timeout: HTMLInputElement;
  private readonly _network: HTMLTextAreaElement;
  private readonly _tools: HTMLElement;
  private readonly _save: HTMLButtonElement;
  private readonly _version: HTMLElement;
  private readonly _status: HTMLElement;
  private readonly _conflict: HTMLElement;
  private readonly _history: HTMLTableSectionElement;
  private readonly _from: HTMLSelectElement;
  private readonly _to: HTMLSelectElement;
  private readonly _diff: HTMLElement;
  private _loaded: IPolicy | null = null;
  private _dirty = false;
}

/** Options of {@link PolicyPanel}. */
export namespace PolicyPanel {
  /** What the panel needs. */
  export interface IOptions {
    client: IOpenFoalClient;
    trans: TranslationBundle;
    /** The scope edited (default `default`). */
    scopeKey?: string;
  }
}
