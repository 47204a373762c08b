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
import { LabIcon, buildIcon, listIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { approvalsIcon } from '../icons';
import { IOpenFoalClient } from '../tokens';
import type { ApprovalsPanel } from './approvals';

/** Command ids of the console. */
export namespace ConsoleCommandIDs {
  export const openApprovals = 'openfoal:open-approvals';
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

/** Command ids of the Sessions and Policy panels. */
export namespace GovernanceCommandIDs {
  export const openSessions = 'openfoal:open-sessions';
  export const openPolicy = 'openfoal:open-policy';
  /** Show a session in the chat (`{sessionId}`); the chat plugin provides it. */
  export const openSessionInChat = 'openfoal:open-session-in-chat';
}

/** Register a command opening (or revealing) one main-area panel, with palette,
 * launcher and restorer entries. */
function singlePanel<T extends Widget & { refresh(): Promise<void> }>(
  app: JupyterFrontEnd,
  options: {
    command: string;
    id: string;
    label: string;
    caption: string;
    title: string;
    icon: LabIcon;
    rank: number;
    create: () => Promise<T>;
    category: string;
    palette: ICommandPalette | null;
    launcher: ILauncher | null;
    restorer: ILayoutRestorer | null;
  }
): void {
  const tracker = new WidgetTracker<MainAreaWidget<T>>({
    namespace: options.id
  });
  let current: MainAreaWidget<T> | null = null;
  app.commands.addCommand(options.command, {
    describedBy: { args: { type: 'object', properties: {} } },
    label: options.label,
    caption: options.caption,
    icon: args => (args.isPalette ? undefined : options.icon),
    execute: async () => {
      if (!current || current.isDisposed) {
        const content = await options.create();
        current = new MainAreaWidget({ content });
        current.id = options.id;
        current.title.label = options.title;
        current.title.icon = options.icon;
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
  options.palette?.addItem({
    command: options.command,
    category: options.category
  });
  options.launcher?.add({
    command: options.command,
    category: options.category,
    rank: options.rank
  });
  void options.restorer?.restore(tracker, {
    command: options.command,
    name: () => options.id
  });
}

/** The Sessions panel (search, page, open in the chat, delete) and the Policy panel. */
export const governancePlugin: JupyterFrontEndPlugin<void> = {
  id: 'openfoal:governance',
  description: 'The OpenFoal Sessions and Policy panels.',
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
    const common = {
      category: trans.__('OpenFoal'),
      palette,
      launcher,
      restorer
    };
    singlePanel(app, {
      ...common,
      command: GovernanceCommandIDs.openSessions,
      id: 'openfoal-sessions',
      label: trans.__('OpenFoal Sessions'),
      caption: trans.__('Search, open and delete OpenFoal sessions'),
      title: trans.__('Sessions'),
      icon: listIcon,
      rank: 2,
      create: async () => {
        const { SessionsPanel } = await import('./sessions');
        return new SessionsPanel({
          client,
          trans,
          openSession: sessionId =>
            void app.commands.execute(GovernanceCommandIDs.openSessionInChat, {
              sessionId
            })
        });
      }
    });
    singlePanel(app, {
      ...common,
      command: GovernanceCommandIDs.openPolicy,
      id: 'openfoal-policy',
      label: trans.__('OpenFoal Policy'),
      caption: trans.__('Edit the OpenFoal policy and compare its versions'),
      title: trans.__('Policy'),
      icon: buildIcon,
      rank: 3,
      create: async () => {
        const { PolicyPanel } = await import('./policy');
        return new PolicyPanel({ client, trans });
      }
    });
  }
};
