/**
 * The model settings plugin: the form opened from the chat's first-run notice, the chat
 * header, the command palette and the launcher.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { settingsIcon } from '@jupyterlab/ui-components';

import { IOpenFoalClient } from '../tokens';
import { singlePanel } from './singlepanel';

/** Command ids of the model settings. */
export namespace ModelCommandIDs {
  export const openModelSettings = 'openfoal:open-model-settings';
}

/** Opens (or reveals) the one model settings form. */
export const modelSettingsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'openfoal:model-settings',
  description: 'The OpenFoal model settings form (provider, model, URL, key).',
  autoStart: true,
  requires: [IOpenFoalClient],
  optional: [ITranslator, ICommandPalette, ILauncher, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    client: IOpenFoalClient,
    translator: ITranslator | null,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    restorer: ILayoutRestorer | null
  ): void => {
    const trans = (translator ?? nullTranslator).load('openfoal');
    singlePanel(app, {
      command: ModelCommandIDs.openModelSettings,
      id: 'openfoal-model-settings',
      label: trans.__('OpenFoal Model Settings'),
      caption: trans.__('Choose the model OpenFoal runs use'),
      title: trans.__('Model Settings'),
      icon: settingsIcon,
      rank: 9,
      category: trans.__('OpenFoal'),
      create: async () => {
        const { ModelSettingsPanel } = await import('./modelsettings');
        return new ModelSettingsPanel({ client, trans });
      },
      load: panel => panel.refresh(),
      refreshOnReveal: true,
      restoreName: 'model-settings',
      palette,
      launcher,
      restorer
    });
  }
};
