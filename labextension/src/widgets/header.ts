/**
 * The panel header: session title and actions, runtime mode, notebook binding, usage.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import {
  LabIcon,
  addIcon,
  buildIcon,
  checkIcon,
  downloadIcon,
  listIcon,
  notebookIcon,
  tableRowsIcon,
  settingsIcon
} from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { NotebookBinding } from '../binding';
import { ChatModel } from '../model';
import { RuntimeMode } from '../protocol';
import { auditIcon, metricsIcon } from '../icons';
import { h } from './dom';

/** What the header's controls ask the panel to do. */
export interface IHeaderActions {
  toggleSessions(): void;
  newSession(): void;
  setMode(mode: RuntimeMode): void;
  toggleBinding(): void;
  /** Open the Approvals panel. */
  openApprovals(): void;
  /** Export the session as a notebook and open it. */
  exportSession(): void;
  /** Open the Sessions panel (the console's list of every session). */
  openSessionsPanel?(): void;
  /** Open the Policy panel. */
  openPolicy?(): void;
  /** Open the Audit panel. */
  openAudit?(): void;
  /** Open the Metrics panel. */
  openMetrics?(): void;
  /** Open the model settings form. */
  openModelSettings(): void;
}

/** Title row and status row of the chat panel. */
export class ChatHeader extends Widget {
  constructor(
    private readonly _model: ChatModel,
    private readonly _binding: NotebookBinding,
    private readonly _trans: TranslationBundle,
    actions: IHeaderActions
  ) {
    super();
    this.addClass('jp-OpenFoal-header');
    const trans = _trans;
    this._sessionsButton = iconButton(
      listIcon,
      trans.__('Browse sessions'),
      'sessions'
    );
    this._sessionsButton.setAttribute('aria-expanded', 'false');
    this._sessionsButton.addEventListener('click', () =>
      actions.toggleSessions()
    );
    const newButton = iconButton(
      addIcon,
      trans.__('New session'),
      'new-session'
    );
    newButton.addEventListener('click', () => actions.newSession());
    const approvalsButton = iconButton(
      checkIcon,
      trans.__('Open approvals'),
      'approvals'
    );
    approvalsButton.addEventListener('click', () => actions.openApprovals());
    this._exportButton = iconButton(
      downloadIcon,
      trans.__('Export the session as a notebook'),
      'export'
    );
    this._exportButton.addEventListener('click', () => actions.exportSession());
    const consoleButtons: HTMLButtonElement[] = [];
    if (actions.openSessionsPanel) {
      const button = iconButton(
        tableRowsIcon,
        trans.__('Open the Sessions panel'),
        'sessions-panel'
      );
      button.addEventListener('click', () => actions.openSessionsPanel?.());
      consoleButtons.push(button);
    }
    if (actions.openPolicy) {
      const button = iconButton(buildIcon, trans.__('Open policy'), 'policy');
      button.addEventListener('click', () => actions.openPolicy?.());
      consoleButtons.push(button);
    }
    if (actions.openAudit) {
      const button = iconButton(auditIcon, trans.__('Open audit'), 'audit');
      button.addEventListener('click', () => actions.openAudit?.());
      consoleButtons.push(button);
    }
    if (actions.openMetrics) {
      const button = iconButton(
        metricsIcon,
        trans.__('Open metrics'),
        'metrics'
      );
      button.addEventListener('click', () => actions.openMetrics?.());
      consoleButtons.push(button);
    }
    const modelButton = iconButton(
      settingsIcon,
      trans.__('Model settings'),
      'model-settings'
    );
    modelButton.addEventListener('click', () => actions.openModelSettings());
    this._title = h('span', { class: 'jp-OpenFoal-title' });
    this._connection = h('span', {
      class: 'jp-OpenFoal-connection',
      role: 'status'
    });

    this._modeButtons = (['local', 'cloud'] as RuntimeMode[]).map(mode => {
      const button = h(
        'button',
        {
          type: 'button',
          class: 'jp-OpenFoal-modeButton',
          'data-mode': mode,
          'aria-label': trans.__('Run tools in %1 mode', mode)
        },
        mode === 'local' ? trans.__('Local') : trans.__('Cloud')
      );
      button.addEventListener('click', () => actions.setMode(mode));
      return button;
    });
    this._pending = h('span', {
      class: 'jp-OpenFoal-pendingMode',
      role: 'status'
    });
    this._bindButton = iconButton(notebookIcon, '', 'bind-notebook');
    this._bindButton.classList.add('jp-OpenFoal-bindButton');
    this._bindLabel = h('span', {});
    this._bindButton.append(this._bindLabel);
    this._bindButton.addEventListener('click', () => actions.toggleBinding());
    this._usage = h('span', { class: 'jp-OpenFoal-usage' });

    this.node.append(
      h(
        'div',
        { class: 'jp-OpenFoal-headerRow' },
        this._sessionsButton,
        this._title,
        this._connection,
        this._exportButton,
        modelButton,
        newButton
      ),
      h(
        'div',
        {
          class: 'jp-OpenFoal-headerRow jp-OpenFoal-consoleRow',
          role: 'toolbar',
          'aria-label': trans.__('Console')
        },
        approvalsButton,
        ...consoleButtons
      ),
      h(
        'div',
        { class: 'jp-OpenFoal-headerRow jp-OpenFoal-statusRow' },
        h(
          'span',
          {
            class: 'jp-OpenFoal-modeGroup',
            role: 'group',
            'aria-label': trans.__('Runtime mode')
          },
          ...this._modeButtons
        ),
        this._pending,
        this._bindButton,
        this._usage
      )
    );
    _model.stateChanged.connect(this.refresh, this);
    _binding.changed.connect(this.refresh, this);
    this.refresh();
  }

  /** Reflect whether the session list is open. */
  set sessionsOpen(open: boolean) {
    this._sessionsButton.setAttribute('aria-expanded', String(open));
  }

  /** Re-read the model and binding. */
  refresh(): void {
    const trans = this._trans;
    const model = this._model;
    const session = model.session;
    this._exportButton.disabled = !session;
    this._title.textContent =
      session?.title ||
      (session ? trans.__('Untitled session') : trans.__('New session'));
    const connection = model.connection;
    this._connection.dataset.state = connection;
    this._connection.title = connectionLabel(trans, connection);
    this._connection.setAttribute('aria-label', this._connection.title);

    const mode = model.runtimeMode;
    for (const button of this._modeButtons) {
      button.setAttribute('aria-pressed', String(button.dataset.mode === mode));
    }
    const pending = model.pendingRuntimeMode;
    this._pending.textContent =
      pending && pending !== mode ? trans.__('%1 on next turn', pending) : '';
    this._pending.hidden = !this._pending.textContent;

    const path = this._binding.path;
    this._bindLabel.textContent = path
      ? (path.split('/').pop() ?? path)
      : trans.__('Bind notebook');
    this._bindButton.setAttribute('aria-pressed', String(!!path));
    this._bindButton.setAttribute(
      'aria-label',
      path
        ? trans.__('Unbind notebook %1', path)
        : trans.__('Bind the chat to the current notebook')
    );

    const usage = Math.round((session?.contextUsage ?? 0) * 100);
    const compactions = session?.compactionCount ?? 0;
    this._usage.textContent = session
      ? trans._n(
          'Context %2% · %1 compaction',
          'Context %2% · %1 compactions',
          compactions,
          usage
        )
      : '';
    this._usage.title = trans.__('Share of the model context in use');
  }

  private _sessionsButton: HTMLButtonElement;
  private _exportButton: HTMLButtonElement;
  private _title: HTMLElement;
  private _connection: HTMLElement;
  private _modeButtons: HTMLButtonElement[];
  private _pending: HTMLElement;
  private _bindButton: HTMLButtonElement;
  private _bindLabel: HTMLElement;
  private _usage: HTMLElement;
}

/** A small button showing an icon, labelled for assistive technology. */
export function iconButton(
  icon: LabIcon,
  label: string,
  action: string
): HTMLButtonElement {
  const button = h('button', {
    type: 'button',
    class: 'jp-OpenFoal-iconButton',
    'data-action': action,
    'aria-label': label || undefined,
    title: label || undefined
  });
  button.append(icon.element({ tag: 'span', className: 'jp-OpenFoal-icon' }));
  return button;
}

function connectionLabel(trans: TranslationBundle, state: string): string {
  const labels: Record<string, string> = {
    idle: trans.__('Not connected'),
    connecting: trans.__('Connecting'),
    open: trans.__('Connected'),
    reconnecting: trans.__('Reconnecting'),
    closed: trans.__('Disconnected')
  };
  return labels[state] ?? state;
}
