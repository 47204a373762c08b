/**
 * The OpenFoal chat panel: header, session browser, conversation and message box.
 */
import { Notification } from '@jupyterlab/apputils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { TranslationBundle } from '@jupyterlab/translation';
import { Message } from '@lumino/messaging';
import { Panel } from '@lumino/widgets';

import { NotebookBinding } from '../binding';
import { ChatModel } from '../model';
import { RuntimeMode } from '../protocol';
import { ChatHeader } from './header';
import { ChatInput } from './input';
import { MessageList } from './messages';
import { SessionList } from './sessions';

/** The chat panel shown in the right sidebar. */
export class ChatPanel extends Panel {
  constructor(options: ChatPanel.IOptions) {
    super();
    const { model, binding, trans } = options;
    this._model = model;
    this._binding = binding;
    this._trans = trans;
    this.addClass('jp-OpenFoal-panel');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', trans.__('OpenFoal chat'));

    this._header = new ChatHeader(model, binding, trans, {
      toggleSessions: () => this.toggleSessions(),
      newSession: () => this.newSession(),
      setMode: (mode: RuntimeMode) => void model.setRuntimeMode(mode),
      toggleBinding: () => this.toggleBinding(),
      openApprovals: () => options.openApprovals?.(),
      exportSession: () => {
        const id = model.session?.id;
        if (id) {
          void options.exportSession?.(id);
        }
      },
      openSessionsPanel: options.openSessionsPanel,
      openPolicy: options.openPolicy,
      openAudit: options.openAudit,
      openMetrics: options.openMetrics,
      openModelSettings: () => options.openModelSettings?.()
    });
    this._sessions = new SessionList(
      model,
      trans,
      id => void this.openSession(id),
      options.exportSession ? id => void options.exportSession?.(id) : undefined
    );
    this._sessions.hide();
    this.messages = new MessageList(model, {
      rendermime: options.rendermime,
      trans,
      expandTools: options.expandTools ?? false,
      gates: {
        resolve: (gate, decision, reason, key) =>
          model.resolveGate(gate, decision, reason, key),
        allowForSession: (gate, key) => model.allowForSession(gate, key)
      },
      models: {
        tryDemo: () => void model.tryDemo(),
        configure: () => options.openModelSettings?.()
      }
    });
    this._input = new ChatInput(model, trans);

    // A flex column (style/base.css): the header and input keep their natural height.
    this.addWidget(this._header);
    this.addWidget(this._sessions);
    this.addWidget(this.messages);
    this.addWidget(this._input);
    this.node.addEventListener('keydown', event => {
      if (event.key === 'Escape' && model.activeRun) {
        event.preventDefault();
        void model.stop();
      }
    });
  }

  /** The conversation list (its settings follow the settings registry). */
  readonly messages: MessageList;

  /** Show or hide the session browser, refreshing it when shown. */
  toggleSessions(): void {
    const open = this._sessions.isHidden;
    this._sessions.setHidden(!open);
    this._header.sessionsOpen = open;
    if (open) {
      void this._model.refreshSessions().catch(reason => {
        console.warn('OpenFoal: could not list sessions', reason);
      });
    }
  }

  /** Start over in a new session. */
  newSession(): void {
    this._model.newSession();
    this._input.focus();
  }

  /** Open a stored session. */
  async openSession(sessionId: string): Promise<void> {
    this._sessions.hide();
    this._header.sessionsOpen = false;
    await this._model.openSession(sessionId);
    this._input.focus();
  }

  /** Bind to the current notebook, or unbind. */
  toggleBinding(): void {
    if (this._binding.path) {
      this._binding.unbind();
    } else if (!this._binding.bindCurrent()) {
      Notification.info(
        this._trans.__('Open a notebook first, then bind the chat to it.'),
        { autoClose: 4000 }
      );
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    if (!this._started) {
      this._started = true;
      void this._model.start().catch(reason => {
        console.warn('OpenFoal: could not reach the gateway', reason);
      });
    }
  }

  protected onActivateRequest(msg: Message): void {
    this._input.focus();
  }

  private _model: ChatModel;
  private _binding: NotebookBinding;
  private _trans: TranslationBundle;
  private _header: ChatHeader;
  private _sessions: SessionList;
  private _input: ChatInput;
  private _started = false;
}

/** Options of the chat panel. */
export namespace ChatPanel {
  /** What a panel needs. */
  export interface IOptions {
    model: ChatModel;
    binding: NotebookBinding;
    rendermime: IRenderMimeRegistry;
    trans: TranslationBundle;
    expandTools?: boolean;
    /** Open the Approvals panel (the header's button). */
    openApprovals?: () => void;
    /** Export a session as a notebook and open it (the header's button). */
    exportSession?: (sessionId: string) => Promise<void>;
    /** Open the Sessions panel (the header's button; none without it). */
    openSessionsPanel?: () => void;
    /** Open the Policy panel (the header's button; none without it). */
    openPolicy?: () => void;
    /** Open the Audit panel (the header's button; none without it). */
    openAudit?: () => void;
    /** Open the Metrics panel (the header's button; none without it). */
    openMetrics?: () => void;
    /** Open the model settings form (the header's button, the first-run notice). */
    openModelSettings?: () => void;
  }
}
