/**
 * The console plugins: Approvals and Sync, main-area panels opened from the launcher and the
 * palette (Approvals also from the chat), restored with the layout.
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

import { approvalsIcon, syncIcon } from '../icons';
import { IOpenFoalClient } from '../tokens';
import type { ApprovalsPanel } from './approvals';
import type { SyncPanel } from './sync';

/** Command ids of the console. */
export namespace ConsoleCommandIDs {
  export const openApprovals = 'openfoal:open-approvals';
  export const openSync = 'openfoal:open-sync';
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
          const content = new ApprovalsPanel({ client, trans });
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

/** Opens (or reveals) the one Sync panel. */
export const syncPlugin: JupyterFrontEndPlugin<void> = {
  id: 'openfoal:sync',
  description:
    'The OpenFoal Sync panel: lag, pending rows, dead letters, conflicts.',
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
    const tracker = new WidgetTracker<MainAreaWidget<SyncPanel>>({
      namespace: 'openfoal-sync'
    });
    let current: MainAreaWidget<SyncPanel> | null = null;

    app.commands.addCommand(ConsoleCommandIDs.openSync, {
      describedBy: { args: { type: 'object', properties: {} } },
      label: trans.__('OpenFoal Sync'),
      caption: trans.__(
        'Sync to the cloud instance: lag, dead letters, conflicts'
      ),
      icon: args => (args.isPalette ? undefined : syncIcon),
      execute: async () => {
        if (!current || current.isDisposed) {
          const { SyncPanel } = await import('./sync');
          const content = new SyncPanel({ client, trans });
          current = new MainAreaWidget({ content });
          current.id = 'openfoal-sync';
          current.title.label = trans.__('Sync');
          current.title.icon = syncIcon;
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
      command: ConsoleCommandIDs.openSync,
      category: trans.__('OpenFoal')
    });
    launcher?.add({
      command: ConsoleCommandIDs.openSync,
      category: trans.__('OpenFoal'),
      rank: 2
    });
    void restorer?.restore(tracker, {
      command: ConsoleCommandIDs.openSync,
      name: () => 'sync'
    });
  }
};
