/**
 * The Approvals plugin: a main-area panel opened from the launcher, the palette and the chat.
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

import { approvalsIcon } from '../icons';
import { IOpenFoalClient } from '../tokens';
import type { ApprovalsPanel } from './approvals';

/** Command ids of the console. */
export namespace ConsoleCommandIDs {
  export const openApprovals = 'openfoal:open-approvals';
  /** Open a session in the chat (`{sessionId}`); registered by the chat plugin. */
  export const openSession = 'openfoal:open-session';
}

/** Opens (or reveals) the one Approvals panel. */
export const approvalsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'openfoal:approvals',
  description: 'The OpenFoal Approvals panel: pending gates across sessions.',
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
    const tracker = new WidgetTracker<MainAreaWidget<ApprovalsPanel>>({
      namespace: 'openfoal-approvals'
    });
    let current: MainAreaWidget<ApprovalsPanel> | null = null;

    app.commands.addCommand(ConsoleCommandIDs.openApprovals, {
      describedBy: { args: { type: 'object', properties: {} } },
      label: trans.__('OpenFoal Approvals'),
      caption: trans.__('Pending OpenFoal gates across sessions'),
      icon: args => (args.isPalette ? undefined : approvalsIcon),
      execute: async () => {
        if (!current || current.isDisposed) {
          const { ApprovalsPanel } = await import('./approvals');
          const content = new ApprovalsPanel({
            client,
            trans,
            openSession: sessionId =>
              void app.commands.execute(ConsoleCommandIDs.openSession, {
                sessionId
              })
          });
          current = new MainAreaWidget({ content });
          current.id = 'openfoal-approvals';
          current.title.label = trans.__('Approvals');
          current.title.icon = approvalsIcon;
          current.title.closable = true;
          void tracker.add(current);
          void content.refresh();
        }
        if (!current.isAttached) {
          app.shell.add(current, 'main');
        }
        app.shell.activateById(current.id);
        return current;
      }
    });

    palette?.addItem({
      command: ConsoleCommandIDs.openApprovals,
      category: trans.__('OpenFoal')
    });
    launcher?.add({
      command: ConsoleCommandIDs.openApprovals,
      category: trans.__('OpenFoal'),
      rank: 1
    });
    void restorer?.restore(tracker, {
      command: ConsoleCommandIDs.openApprovals,
      name: () => 'approvals'
    });
  }
};
