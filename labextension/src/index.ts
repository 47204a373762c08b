/**
 * The OpenFoal JupyterLab extension: the gateway client and the chat panel.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { ILauncher } from '@jupyterlab/launcher';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { NotebookBinding } from './binding';
import { OpenFoalClient } from './client';
import {
  ConsoleCommandIDs,
  GovernanceCommandIDs,
  approvalsPlugin,
  auditPlugin,
  governancePlugin,
  metricsPlugin,
  syncPlugin
} from './console/plugin';
import { ModelCommandIDs, modelSettingsPlugin } from './console/modelplugin';
import { openfoalIcon } from './icons';
import { ChatModel } from './model';
import { RuntimeMode } from './protocol';
import { IOpenFoalClient } from './tokens';
import { parkedPlugin } from './parked';
import { runViewPlugin } from './runview';
// The sidebar panel is added at activation, so it is needed at once.
// eslint-disable-next-line jupyter/prefer-lazy-imports
import { ChatPanel } from './widgets/panel';

export * from './tokens';
export { OpenFoalClient } from './client';
export { ChatModel } from './model';

/** Command ids. */
export namespace CommandIDs {
  export const open = 'openfoal:open-chat';
  export const newSession = 'openfoal:new-session';
  export const stop = 'openfoal:stop';
  export const bindNotebook = 'openfoal:bind-notebook';
}

/** Commands take no arguments. */
const noArgs = { args: { type: 'object' as const, properties: {} } };

/** The gateway URL of this server: `{base_url}openfoal/ws`, with the token if needed. */
function gatewayUrl(app: JupyterFrontEnd): string {
  const settings = app.serviceManager.serverSettings;
  let url = URLExt.join(settings.wsUrl, 'openfoal', 'ws');
  // Like JupyterLab's own sockets: the token rides along only where cookies will not.
  if (settings.token && settings.appendToken) {
    url += `?token=${encodeURIComponent(settings.token)}`;
  }
  return url;
}

/**
 * Export a session with `sessions.export`, save it as `<sessionId>.ipynb` at the top of the
 * server's root (replacing an earlier export) and open it.
 */
async function exportSession(
  app: JupyterFrontEnd,
  client: IOpenFoalClient,
  sessionId: string
): Promise<void> {
  try {
    const res = await client.request('sessions.export', { sessionId });
    const path = String(res.filename);
    await app.serviceManager.contents.save(path, {
      type: 'notebook',
      format: 'json',
      content: res.notebook
    });
    await app.commands.execute('docmanager:open', { path });
  } catch (reason) {
    Notification.error(`OpenFoal export failed: ${(reason as Error).message}`, {
      autoClose: 8000
    });
  }
}

/** Provides the WebSocket client of the OpenFoal gateway. */
const clientPlugin: JupyterFrontEndPlugin<IOpenFoalClient> = {
  id: 'openfoal:client',
  description: 'The connection to the OpenFoal gateway.',
  autoStart: true,
  provides: IOpenFoalClient,
  activate: (app: JupyterFrontEnd): IOpenFoalClient => {
    return new OpenFoalClient({
      url: gatewayUrl(app),
      WebSocket: app.serviceManager.serverSettings.WebSocket,
      clientName: 'openfoal-jupyterlab',
      clientVersion: app.version
    });
  }
};

/** The chat panel in the right sidebar, with its commands and launcher card. */
const chatPlugin: JupyterFrontEndPlugin<void> = {
  id: 'openfoal:chat',
  description: 'The OpenFoal chat panel.',
  autoStart: true,
  requires: [IOpenFoalClient, IRenderMimeRegistry],
  optional: [
    ITranslator,
    ISettingRegistry,
    ICommandPalette,
    ILauncher,
    INotebookTracker,
    ILayoutRestorer
  ],
  activate: (
    app: JupyterFrontEnd,
    client: IOpenFoalClient,
    rendermime: IRenderMimeRegistry,
    translator: ITranslator | null,
    settingRegistry: ISettingRegistry | null,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    notebooks: INotebookTracker | null,
    restorer: ILayoutRestorer | null
  ): void => {
    const trans = (translator ?? nullTranslator).load('openfoal');
    const binding = new NotebookBinding(notebooks);
    const model = new ChatModel({
      client,
      runExtras: () => binding.runExtras()
    });
    const panel = new ChatPanel({
      model,
      binding,
      rendermime,
      trans,
      openApprovals: () =>
        void app.commands.execute(ConsoleCommandIDs.openApprovals),
      exportSession: sessionId => exportSession(app, client, sessionId),
      openSessionsPanel: () =>
        void app.commands.execute(GovernanceCommandIDs.openSessions),
      openPolicy: () =>
        void app.commands.execute(GovernanceCommandIDs.openPolicy),
      openAudit: () => void app.commands.execute(ConsoleCommandIDs.openAudit),
      openMetrics: () =>
        void app.commands.execute(ConsoleCommandIDs.openMetrics),
      openModelSettings: () =>
        void app.commands.execute(ModelCommandIDs.openModelSettings)
    });
    panel.id = 'openfoal-chat';
    panel.title.icon = openfoalIcon;
    panel.title.caption = trans.__('OpenFoal chat');
    app.shell.add(panel, 'right', { rank: 200 });
    restorer?.add(panel, 'openfoal-chat');

    if (settingRegistry) {
      void settingRegistry.load(chatPlugin.id).then(settings => {
        const apply = () => {
          model.defaultRuntimeMode = settings.get('defaultRuntimeMode')
            .composite as RuntimeMode;
          model.modelId = settings.get('model').composite as string;
          panel.messages.expandTools = settings.get('expandToolOutput')
            .composite as boolean;
        };
        apply();
        settings.changed.connect(apply);
      });
    }

    app.commands.addCommand(CommandIDs.open, {
      describedBy: noArgs,
      label: trans.__('OpenFoal Chat'),
      caption: trans.__('Open the OpenFoal chat'),
      icon: args => (args.isPalette ? undefined : openfoalIcon),
      execute: () => app.shell.activateById(panel.id)
    });
    app.commands.addCommand(CommandIDs.newSession, {
      describedBy: noArgs,
      label: trans.__('New OpenFoal Session'),
      execute: () => {
        app.shell.activateById(panel.id);
        panel.newSession();
      }
    });
    app.commands.addCommand(CommandIDs.stop, {
      describedBy: noArgs,
      label: trans.__('Stop the OpenFoal Run'),
      isEnabled: () => model.activeRun !== null,
      execute: () => model.stop()
    });
    app.commands.addCommand(CommandIDs.bindNotebook, {
      describedBy: noArgs,
      label: trans.__('Bind OpenFoal Chat to the Current Notebook'),
      isEnabled: () => binding.canBind,
      execute: () => {
        binding.bindCurrent();
        app.shell.activateById(panel.id);
      }
    });
    for (const id of [
      GovernanceCommandIDs.openSessionInChat,
      ConsoleCommandIDs.openSession
    ]) {
      app.commands.addCommand(id, {
        describedBy: {
          args: {
            type: 'object',
            properties: { sessionId: { type: 'string' } },
            required: ['sessionId']
          }
        },
        label: trans.__('Open an OpenFoal Session in the Chat'),
        execute: async args => {
          const sessionId = String(args.sessionId ?? '');
          if (!sessionId) {
            return;
          }
          app.shell.activateById(panel.id);
          await panel.openSession(sessionId);
        }
      });
    }
    model.stateChanged.connect(() =>
      app.commands.notifyCommandChanged(CommandIDs.stop)
    );

    const category = trans.__('OpenFoal');
    for (const command of Object.values(CommandIDs)) {
      palette?.addItem({ command, category });
    }
    launcher?.add({
      command: CommandIDs.open,
      category: trans.__('Other'),
      rank: 1
    });
  }
};

export default [
  clientPlugin,
  chatPlugin,
  runViewPlugin,
  parkedPlugin,
  approvalsPlugin,
  governancePlugin,
  auditPlugin,
  metricsPlugin,
  modelSettingsPlugin,
  syncPlugin
];
