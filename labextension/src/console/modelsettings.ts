/**
 * The model settings form: provider, model id, base URL and API key, saved on the server.
 *
 * The key goes to the server once (`model.update`) and is never shown back: the form only
 * learns `hasKey`. Nothing here touches browser storage.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { errorBody } from '../gates';
import { IErrorBody } from '../protocol';
import { IOpenFoalClient } from '../tokens';
import { h } from '../widgets/dom';

/** A provider the form offers. */
export type ModelProvider = 'openai' | 'anthropic' | 'demo';

/** The saved settings as `model.get` answers them (no key, only `hasKey`). */
export interface ISavedModel {
  provider: ModelProvider;
  model: string;
  baseUrl?: string | null;
  hasKey: boolean;
  updatedAt?: string | null;
  updatedBy?: string | null;
}

/** The payload of `model.get` and `model.update`. */
export interface IModelState {
  saved: ISavedModel | null;
  active: string | null;
  source: 'config' | 'saved' | 'none';
  canEdit: boolean;
}

/** The payload of `model.test`. */
export interface IModelTest {
  ok: boolean;
  model: string;
  latencyMs: number;
  reply?: string | null;
  error?: { code: string; message: string; status?: number | null } | null;
}

/** Example model ids and default URLs, shown as placeholders (not translated: they are ids). */
const EXAMPLES: Record<string, { model: string; url: string }> = {
  openai: { model: 'gpt-4.1-mini', url: 'https://api.openai.com/v1' },
  anthropic: { model: 'claude-sonnet-4-5', url: 'https://api.anthropic.com' },
  demo: { model: 'demo', url: '' }
};

/** The form, as a main-area panel. */
export class ModelSettingsPanel extends Widget {
  constructor(options: ModelSettingsPanel.IOptions) {
    super();
    this._client = options.client;
    const trans = (this._trans = options.trans);
    this.addClass('jp-OpenFoal-modelSettings');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', trans.__('OpenFoal model settings'));

    this._provider = h('select', {
      id: 'openfoal-model-provider',
      class: 'jp-mod-styled',
      name: 'provider'
    });
    for (const [value, label] of [
      ['openai', trans.__('OpenAI or a compatible server')],
      ['anthropic', trans.__('Anthropic')],
      ['demo', trans.__('Demo model (scripted, offline)')]
    ]) {
      this._provider.append(h('option', { value }, label));
    }
    this._model = input('openfoal-model-id', 'text', 'gpt-4.1-mini');
    this._baseUrl = input(
      'openfoal-model-url',
      'url',
      'https://api.openai.com/v1'
    );
    this._apiKey = input('openfoal-model-key', 'password', '');
    this._apiKey.setAttribute('autocomplete', 'new-password');
    this._keyNote = h('span', {
      class: 'jp-OpenFoal-modelKeyNote',
      id: 'openfoal-model-key-note'
    });
    this._apiKey.setAttribute('aria-describedby', this._keyNote.id);
    this._clearKey = h('input', {
      type: 'checkbox',
      id: 'openfoal-model-clear-key'
    });
    this._save = h(
      'button',
      { type: 'submit', class: 'jp-mod-styled jp-mod-accept' },
      trans.__('Save')
    );
    this._test = h(
      'button',
      { type: 'button', class: 'jp-mod-styled' },
      trans.__('Test connection')
    );
    this._active = h('p', { class: 'jp-OpenFoal-modelActive' });
    this._status = h('div', {
      class: 'jp-OpenFoal-modelStatus',
      role: 'status',
      'aria-live': 'polite'
    });
    this._form = h(
      'form',
      { class: 'jp-OpenFoal-modelForm', autocomplete: 'off' },
      h('h2', {}, trans.__('Model settings')),
      this._active,
      field(trans.__('Provider'), this._provider),
      field(trans.__('Model id'), this._model),
      field(trans.__('Base URL (optional)'), this._baseUrl),
      field(trans.__('API key'), this._apiKey, this._keyNote),
      h(
        'div',
        { class: 'jp-OpenFoal-modelField jp-OpenFoal-modelCheck' },
        this._clearKey,
        h('label', { for: this._clearKey.id }, trans.__('Forget the saved key'))
      ),
      h('div', { class: 'jp-OpenFoal-modelButtons' }, this._save, this._test),
      this._status
    );
    this._form.addEventListener('submit', event => {
      event.preventDefault();
      void this.save();
    });
    this._test.addEventListener('click', () => void this.testConnection());
    this._provider.addEventListener('change', () => this._syncProvider());
    this.node.append(this._form);
    this._syncProvider();
  }

  /** The last state the server sent. */
  get state(): IModelState | null {
    return this._state;
  }

  /** Load the saved settings (`model.get`) into the form. */
  async refresh(): Promise<void> {
    this._setStatus('info', this._trans.__('Loading…'));
    try {
      await this._client.connect();
      const state = await this._client.request<IModelState>('model.get', {});
      this._show(state, true);
      this._setStatus('info', '');
    } catch (reason) {
      this._setError(errorBody(reason));
    }
  }

  /** Save the form (`model.update`); a typed key is sent once and then cleared. */
  async save(): Promise<void> {
    const params: Record<string, unknown> = {
      ...this._fields(),
      clearKey: this._clearKey.checked
    };
    this._setBusy(true);
    this._setStatus('info', this._trans.__('Saving…'));
    try {
      const state = await this._client.request<IModelState>(
        'model.update',
        params
      );
      this._show(state, true);
      this._setStatus(
        'ok',
        this._trans.__('Saved. New runs use %1.', state.active ?? '—')
      );
    } catch (reason) {
      this._setError(errorBody(reason));
    } finally {
      this._setBusy(false);
    }
  }

  /** Call the provider once with the form's settings (`model.test`). */
  async testConnection(): Promise<void> {
    this._setBusy(true);
    this._setStatus('info', this._trans.__('Testing the connection…'));
    try {
      const got = await this._client.request<IModelTest>(
        'model.test',
        this._fields(),
        { timeoutMs: 60_000 }
      );
      if (got.ok) {
        this._setStatus(
          'ok',
          this._trans.__(
            'Connection works: %1 answered in %2 ms.',
            got.model,
            String(got.latencyMs)
          )
        );
      } else {
        this._setError({
          code: got.error?.code ?? 'MODEL_UNAVAILABLE',
          message:
            got.error?.message ?? this._trans.__('the model did not answer')
        });
      }
    } catch (reason) {
      this._setError(errorBody(reason));
    } finally {
      this._setBusy(false);
    }
  }

  private _fields(): Record<string, unknown> {
    const provider = this._provider.value as ModelProvider;
    const fields: Record<string, unknown> = { provider };
    const model = this._model.value.trim();
    fields.model = provider === 'demo' ? 'demo' : model;
    const url = this._baseUrl.value.trim();
    if (url && provider !== 'demo') {
      fields.baseUrl = url;
    }
    const key = this._apiKey.value;
    if (key && provider !== 'demo') {
      fields.apiKey = key;
    }
    return fields;
  }

  private _show(state: IModelState, fill: boolean): void {
    const trans = this._trans;
    this._state = state;
    const saved = state.saved;
    if (fill && saved) {
      this._provider.value = saved.provider;
      this._model.value = saved.model;
      this._baseUrl.value = saved.baseUrl ?? '';
    }
    // The key never comes back: the field stays empty, the note says whether one is kept.
    this._apiKey.value = '';
    this._clearKey.checked = false;
    this._keyNote.textContent = saved?.hasKey
      ? trans.__('A key is saved on the server. Leave empty to keep it.')
      : trans.__(
          'No key saved. It is stored on the server, never in the browser.'
        );
    this.node.dataset.hasKey = String(Boolean(saved?.hasKey));
    const sources: Record<string, string> = {
      config: trans.__('from the server configuration or environment'),
      saved: trans.__('from these saved settings'),
      none: ''
    };
    this._active.textContent = state.active
      ? trans.__(
          'New runs use %1 (%2).',
          state.active,
          sources[state.source] ?? state.source
        )
      : trans.__('No model is configured yet.');
    if (state.source === 'config') {
      this._active.textContent +=
        ' ' +
        trans.__('The server configuration wins over what is saved here.');
    }
    for (const control of this._controls()) {
      control.disabled = !state.canEdit;
    }
    if (!state.canEdit) {
      this._setStatus(
        'info',
        trans.__("Only the server's owner may change the model.")
      );
    }
    this._syncProvider();
  }

  private _syncProvider(): void {
    const demo = this._provider.value === 'demo';
    const editable = this._state?.canEdit ?? true;
    for (const control of [this._model, this._baseUrl, this._apiKey]) {
      control.disabled = demo || !editable;
    }
    const examples = EXAMPLES[this._provider.value] ?? EXAMPLES.openai;
    this._model.placeholder = examples.model;
    this._baseUrl.placeholder = examples.url;
  }

  private _controls(): (
    HTMLInputElement | HTMLSelectElement | HTMLButtonElement
  )[] {
    return [
      this._provider,
      this._model,
      this._baseUrl,
      this._apiKey,
      this._clearKey,
      this._save,
      this._test
    ];
  }

  private _setBusy(busy: boolean): void {
    this._save.disabled = busy;
    this._test.disabled = busy;
    this.node.dataset.busy = String(busy);
  }

  private _setStatus(kind: 'info' | 'ok' | 'error', text: string): void {
    this._status.dataset.kind = kind;
    this._status.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    this._status.replaceChildren(text);
  }

  private _setError(error: IErrorBody): void {
    this._setStatus('error', '');
    this._status.append(
      h('span', { class: 'jp-OpenFoal-errorCode' }, error.code),
      ' ',
      h('span', { class: 'jp-OpenFoal-errorMessage' }, error.message),
      error.traceId
        ? h(
            'span',
            { class: 'jp-OpenFoal-errorTrace' },
            ` (${this._trans.__('trace %1', error.traceId)})`
          )
        : ''
    );
  }

  private readonly _client: IOpenFoalClient;
  private readonly _trans: TranslationBundle;
  private readonly _form: HTMLFormElement;
  private readonly _provider: HTMLSelectElement;
  private readonly _model: HTMLInputElement;
  private readonly _baseUrl: HTMLInputElement;
  private readonly _apiKey: HTMLInputElement;
  private readonly _keyNote: HTMLElement;
  private readonly _clearKey: HTMLInputElement;
  private readonly _save: HTMLButtonElement;
  private readonly _test: HTMLButtonElement;
  private readonly _active: HTMLElement;
  private readonly _status: HTMLElement;
  private _state: IModelState | null = null;
}

/** Options of {@link ModelSettingsPanel}. */
export namespace ModelSettingsPanel {
  /** What the form needs. */
  export interface IOptions {
    client: IOpenFoalClient;
    trans: TranslationBundle;
  }
}

function input(
  id: string,
  type: string,
  placeholder: string
): HTMLInputElement {
  return h('input', {
    id,
    type,
    class: 'jp-mod-styled',
    placeholder: placeholder || undefined,
    spellcheck: 'false'
  });
}

function field(
  label: string,
  control: HTMLElement,
  note?: HTMLElement
): HTMLElement {
  return h(
    'div',
    { class: 'jp-OpenFoal-modelField' },
    h('label', { for: control.id }, label),
    control,
    note ?? null
  );
}
