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
import { buildIcon, listIcon } from '@jupyterlab/ui-components';

import {
  approvalsIcon,
  auditIcon,
  metricsIcon,
  replayIcon,
  syncIcon
} from '../icons';
import { IOpenFoalClient } from '../tokens';
import type { ApprovalsPanel } from './approvals';
import type { ReplayPanel } from './replay';
import { singlePanel } from './singlepanel';

/** Command ids of the console. */
export namespace ConsoleCommandIDs {
  export const openApprovals = 'openfoal:open-approvals';
  export const openSync = 'openfoal:open-sync';
  export const openAudit = 'openfoal:open-audit';
  export const openReplay = 'openfoal:open-replay';
  export const openMetrics = 'openfoal:open-metrics';
  /** Open a session in the chat (`{sessionId}`); registered by the chat plugin. */
  export const openSession = 'openfoal:open-session';
}

/** The query parameter of a gate link (`<lab>?openfoal-gate=<gateId>`). */
export const GATE_PARAM = 'openfoal-gate';

/** Opens (or reveals) the one Approvals panel; `?openfoal-gate=<id>` opens it on that gate. */
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
      describedBy: {
        args: {
          type: 'object',
          properties: {
            gateId: {
              type: 'string',
              description: 'A gate to show highlighted, whatever the filters'
            }
          }
        }
      },
      label: trans.__('OpenFoal Approvals'),
      caption: trans.__('Pending OpenFoal gates across sessions'),
      icon: args => (args.isPalette ? undefined : approvalsIcon),
      execute: async args => {
        const gateId = typeof args.gateId === 'string' ? args.gateId : '';
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
          if (!gateId) {
            void content.refresh();
          }
        }
        if (gateId) {
          void current.content.focusGate(gateId);
        }
        if (!current.isAttached) {
          app.shell.add(current, 'main');
        }
        app.shell.activateById(current.id);
        return current;
      }
    });

    // A parked cell links to `<lab>?openfoal-gate=<gateId>`: open that gate once the layout
    // is restored. The parameter is read now, before the router rewrites the address.
    const linked = new URLSearchParams(window.location.search).get(GATE_PARAM);
    if (linked) {
      void app.restored.then(() =>
        app.commands.execute(ConsoleCommandIDs.openApprovals, {
          gateId: linked
        })
      );
    }

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
      load: panel => panel.refresh(),
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
      load: panel => panel.refresh(),
      create: async () => {
        const { PolicyPanel } = await import('./policy');
        return new PolicyPanel({ client, trans });
      }
    });
  }
};

/** The Audit panel (one) and the Replay panels (one per run), restored with the workspace. */
export const auditPlugin: JupyterFrontEndPlugin<void> = {
  id: 'openfoal:audit',
  description: 'The OpenFoal Audit panel and the Replay of a run.',
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
    const replayTracker = new WidgetTracker<MainAreaWidget<ReplayPanel>>({
      namespace: 'openfoal-replay'
    });
    const openRun = (runId: string) =>
      void app.commands.execute(ConsoleCommandIDs.openReplay, { runId });
    singlePanel(app, {
      command: ConsoleCommandIDs.openAudit,
      id: 'openfoal-audit',
      label: trans.__('OpenFoal Audit'),
      caption: trans.__('Search the OpenFoal audit trail'),
      title: trans.__('Audit'),
      icon: auditIcon,
      rank: 5,
      category: trans.__('OpenFoal'),
      create: async () => {
        const { AuditPanel } = await import('./audit');
        return new AuditPanel({ client, trans, openRun });
      },
      load: panel => panel.apply(),
      restoreName: 'audit',
      palette,
      launcher,
      restorer
    });

    app.commands.addCommand(ConsoleCommandIDs.openReplay, {
      describedBy: {
        args: {
          type: 'object',
          properties: { runId: { type: 'string' } },
          required: ['runId']
        }
      },
      label: trans.__('OpenFoal Replay'),
      caption: trans.__('The timeline of one OpenFoal run'),
      icon: replayIcon,
      execute: async args => {
        const runId = String(args.runId ?? '');
        if (!runId) {
          return null;
        }
        let widget = replayTracker.find(w => w.content.runId === runId);
        if (!widget) {
          const { ReplayPanel } = await import('./replay');
          const content = new ReplayPanel({ client, trans, runId });
          widget = new MainAreaWidget({ content });
          widget.id = `openfoal-replay-${runId}`;
          widget.title.label = trans.__('Replay %1', runId.slice(0, 12));
          widget.title.caption = trans.__('Replay of run %1', runId);
          widget.title.icon = replayIcon;
          widget.title.closable = true;
          void replayTracker.add(widget);
          void content.refresh();
        }
        if (!widget.isAttached) {
          app.shell.add(widget, 'main');
        }
        app.shell.activateById(widget.id);
        return widget;
      }
    });

    void restorer?.restore(replayTracker, {
      command: ConsoleCommandIDs.openReplay,
      args: w => ({ runId: w.content.runId }),
      name: w => w.content.runId
    });
  }
};

/** The Metrics panel, restored with the workspace. */
export const metricsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'openfoal:metrics',
  description:
    'The OpenFoal Metrics panel: runs, tools, latency and gates over time.',
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
      command: ConsoleCommandIDs.openMetrics,
      id: 'openfoal-metrics',
      label: trans.__('OpenFoal Metrics'),
      caption: trans.__('OpenFoal runs, tool calls, latency and gates'),
      title: trans.__('Metrics'),
      icon: metricsIcon,
      rank: 6,
      category: trans.__('OpenFoal'),
      create: async () => {
        const { MetricsPanel } = await import('./metrics');
        return new MetricsPanel({ client, trans });
      },
      load: panel => panel.refresh(),
      restoreName: 'metrics',
      palette,
      launcher,
      restorer
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
    singlePanel(app, {
      command: ConsoleCommandIDs.openSync,
      id: 'openfoal-sync',
      label: trans.__('OpenFoal Sync'),
      caption: trans.__(
        'Sync to the cloud instance: lag, dead letters, conflicts'
      ),
      title: trans.__('Sync'),
      icon: syncIcon,
      rank: 2,
      category: trans.__('OpenFoal'),
      create: async () => {
        const { SyncPanel } = await import('./sync');
        return new SyncPanel({ client, trans });
      },
      load: panel => panel.refresh(),
      restoreName: 'sync',
      palette,
      launcher,
      restorer
    });
  }
};
