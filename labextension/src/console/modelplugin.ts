/**
 * The model settings plugin: the form opened from the chat's first-run notice, the chat
 * header, the command palette and the launcher.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  MainAreaWidget,
  WidgetTracker
} from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { settingsIcon } from '@jupyterlab/ui-components';

import { IOpenFoalClient } from '../tokens';
import type { ModelSettingsPanel } from './modelsettings';

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
    const tracker = new WidgetTracker<MainAreaWidget<ModelSettingsPanel>>({
      namespace: 'openfoal-model-settings'
    });
    let current: MainAreaWidget<ModelSettingsPanel> | null = null;

    app.commands.addCommand(ModelCommandIDs.openModelSettings, {
      describedBy: { args: { type: 'object', properties: {} } },
      label: trans.__('OpenFoal Model Settings'),
      caption: trans.__('Choose the model OpenFoal runs use'),
      icon: args => (args.isPalette ? undefined : settingsIcon),
      execute: async () => {
        if (!current || current.isDisposed) {
          const { ModelSettingsPanel } = await import('./modelsettings');
          const content = new ModelSettingsPanel({ client, trans });
          current = new MainAreaWidget({ content });
          current.id = 'openfoal-model-settings';
          current.title.label = trans.__('Model Settings');
          current.title.icon = settingsIcon;
          current.title.closable = true;
          void tracker.add(current);
        }
        if (!current.isAttached) {
          app.shell.add(current, 'main');
        }
        app.shell.activateById(current.id);
        void current.content.refresh();
        return current;
      }
    });

    palette?.addItem({
      command: ModelCommandIDs.openModelSettings,
      category: trans.__('OpenFoal')
    });
    launcher?.add({
      command: ModelCommandIDs.openModelSettings,
      category: trans.__('OpenFoal'),
      rank: 9
    });
    void restorer?.restore(tracker, {
      command: ModelCommandIDs.openModelSettings,
      name: () => 'model-settings'
    });
  }
};
