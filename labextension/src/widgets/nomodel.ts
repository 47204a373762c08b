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
}

/** Whether an error means the server has no model configured. */
export function isNoModel(entry: IErrorEntry): boolean {
  return (
    entry.code === 'MODEL_UNAVAILABLE' &&
    /no model is configured/i.test(entry.message)
  );
}

/** The notice's nodes: a line, two buttons, and the configuration help (shown on demand). */
export function noModelNodes(
  trans: TranslationBundle,
  entry: IErrorEntry,
  actions: IModelActions
): Node[] {
  const help = h(
    'div',
    { class: 'jp-OpenFoal-noModelHelp', id: `help-${entry.id}`, hidden: true },
    entry.message
  );
  const demo = h(
    'button',
    { type: 'button', class: 'jp-mod-styled jp-mod-accept' },
    trans.__('Try the demo model')
  );
  demo.addEventListener('click', () => actions.tryDemo());
  const configure = h(
    'button',
    {
      type: 'button',
      class: 'jp-mod-styled',
      'aria-expanded': 'false',
      'aria-controls': help.id
    },
    trans.__('Configure a model')
  );
  configure.addEventListener('click', () => {
    help.hidden = !help.hidden;
    configure.setAttribute('aria-expanded', String(!help.hidden));
  });
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
