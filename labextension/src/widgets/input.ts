/**
 * The message box: Enter sends, Shift+Enter adds a line, Escape stops the run.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { runIcon, stopIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { ChatModel } from '../model';
import { h } from './dom';
import { iconButton } from './header';

/** Text area with send and stop buttons. */
export class ChatInput extends Widget {
  constructor(
    private readonly _model: ChatModel,
    trans: TranslationBundle
  ) {
    super();
    this.addClass('jp-OpenFoal-input');
    this._textarea = h('textarea', {
      class: 'jp-OpenFoal-textarea',
      rows: '2',
      placeholder: trans.__('Message OpenFoal (/new, /reset, /compact)'),
      'aria-label': trans.__('Message')
    });
    this._textarea.addEventListener('keydown', event => this._onKeyDown(event));
    this._send = iconButton(runIcon, trans.__('Send message'), 'send');
    this._send.addEventListener('click', () => void this.submit());
    this._stop = iconButton(stopIcon, trans.__('Stop the run'), 'stop');
    this._stop.addEventListener('click', () => void this._model.stop());
    this.node.append(this._textarea, this._stop, this._send);
    _model.stateChanged.connect(this.refresh, this);
    this.refresh();
  }

  /** Put the caret in the text area. */
  focus(): void {
    this._textarea.focus();
  }

  /** Send what was typed; the text stays when the gateway refused it. */
  async submit(): Promise<void> {
    const text = this._textarea.value;
    if (!text.trim() || this._model.busy) {
      return;
    }
    this._textarea.value = '';
    const sent = await this._model.send(text);
    if (!sent && !this._textarea.value) {
      this._textarea.value = text;
    }
  }

  /** Enable or disable the controls from the model state. */
  refresh(): void {
    const model = this._model;
    const running = model.activeRun !== null;
    this._send.disabled = model.busy;
    this._stop.hidden = !running;
    this._stop.disabled = !!model.activeRun?.stopping;
    this.node.dataset.running = String(running);
  }

  private _onKeyDown(event: KeyboardEvent): void {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      void this.submit();
    } else if (event.key === 'Escape' && this._model.activeRun) {
      event.preventDefault();
      void this._model.stop();
    }
  }

  private _textarea: HTMLTextAreaElement;
  private _send: HTMLButtonElement;
  private _stop: HTMLButtonElement;
}
