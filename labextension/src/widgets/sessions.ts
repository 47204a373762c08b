/**
 * The session browser: title, last update, runtime mode and sync state of each session.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { downloadIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { ChatModel } from '../model';
import { h, relativeTime } from './dom';
import { iconButton } from './header';

/** A list of the user's sessions; choosing one opens it in the chat. */
export class SessionList extends Widget {
  constructor(
    private readonly _model: ChatModel,
    private readonly _trans: TranslationBundle,
    private readonly _onOpen: (sessionId: string) => void,
    private readonly _onExport?: (sessionId: string) => void
  ) {
    super();
    this.addClass('jp-OpenFoal-sessions');
    this.node.setAttribute('aria-label', _trans.__('Sessions'));
    _model.sessionsChanged.connect(this._render, this);
    _model.stateChanged.connect(this._render, this);
    this._render();
  }

  private _render(): void {
    const trans = this._trans;
    const current = this._model.session?.id;
    const sessions = this._model.sessions;
    if (sessions.length === 0) {
      this.node.replaceChildren(
        h(
          'div',
          { class: 'jp-OpenFoal-sessionsEmpty' },
          trans.__('No sessions yet')
        )
      );
      return;
    }
    const items = sessions.map(session => {
      const title =
        session.title || session.preview || trans.__('Untitled session');
      const button = h(
        'button',
        {
          class: 'jp-OpenFoal-sessionItem',
          type: 'button',
          'data-session-id': session.id,
          'aria-current': session.id === current ? 'true' : undefined,
          'aria-label': trans.__('Open session %1', title)
        },
        h('span', { class: 'jp-OpenFoal-sessionTitle' }, title),
        h(
          'span',
          { class: 'jp-OpenFoal-sessionMeta' },
          h('span', {}, relativeTime(session.updatedAt)),
          h(
            'span',
            { class: 'jp-OpenFoal-badge' },
            session.runtimeMode ?? 'local'
          ),
          h(
            'span',
            {
              class: 'jp-OpenFoal-badge',
              'data-sync': session.syncState ?? ''
            },
            syncLabel(trans, session.syncState)
          )
        )
      );
      button.addEventListener('click', () => this._onOpen(session.id));
      if (!this._onExport) {
        return h('li', {}, button);
      }
      const exportButton = iconButton(
        downloadIcon,
        trans.__('Export session %1 as a notebook', title),
        'export-session'
      );
      exportButton.addEventListener('click', () =>
        this._onExport?.(session.id)
      );
      return h('li', { class: 'jp-OpenFoal-sessionRow' }, button, exportButton);
    });
    this.node.replaceChildren(h('ul', {}, ...items));
  }
}

function syncLabel(
  trans: TranslationBundle,
  state: string | undefined
): string {
  const labels: Record<string, string> = {
    local_only: trans.__('local only'),
    syncing: trans.__('syncing'),
    synced: trans.__('synced'),
    conflict: trans.__('sync conflict')
  };
  return labels[state ?? 'local_only'] ?? String(state);
}
