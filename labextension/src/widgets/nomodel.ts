/**
 * What the chat shows when no model is configured: try the demo, or how to configure one.
 */
import { TranslationBundle } from '@jupyterlab/translation';

import { IErrorEntry } from '../entries';
import { h } from './dom';

/** What the no-model notice can ask the panel to do. */
export interface IModelActions {
  /** Send the last message again with the built-in demo model. */
  tryDemo(): void;
  /** Open the model settings form. */
  configure(): void;
}

/** Whether an error means the server has no model configured. */
export function isNoModel(entry: IErrorEntry): boolean {
  return (
    entry.code === 'MODEL_UNAVAILABLE' &&
    /no model is configured/i.test(entry.message)
  );
}

/** The notice's nodes: a line, two buttons, and the environment help (shown on demand). */
export function noModelNodes(
  trans: TranslationBundle,
  entry: IErrorEntry,
  actions: IModelActions
): Node[] {
  const demo = h(
    'button',
    { type: 'button', class: 'jp-mod-styled jp-mod-accept' },
    trans.__('Try the demo model')
  );
  demo.addEventListener('click', () => actions.tryDemo());
  const configure = h(
    'button',
    { type: 'button', class: 'jp-mod-styled' },
    trans.__('Configure a model')
  );
  configure.addEventListener('click', () => actions.configure());
  // The server's own instructions, for whoever configures it through the environment.
  const help = h(
    'details',
    { class: 'jp-OpenFoal-noModelHelp' },
    h(
      'summary',
      {},
      trans.__('Or configure the server with environment variables')
    ),
    h('p', {}, entry.message)
  );
  return [
    h(
      'p',
      { class: 'jp-OpenFoal-noModelText' },
      trans.__(
        'No model is configured yet. Try the built-in demo model (scripted, offline) or configure a real one.'
      )
    ),
    h('div', { class: 'jp-OpenFoal-noModelButtons' }, demo, configure),
    help
  ];
}
