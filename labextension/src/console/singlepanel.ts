/**
 * One main-area console panel behind one command: created on first use, revealed after,
 * listed in the palette and the launcher, restored with the workspace.
 */
import { ILayoutRestorer, JupyterFrontEnd } from '@jupyterlab/application';
import {
  ICommandPalette,
  MainAreaWidget,
  WidgetTracker
} from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

/** What `singlePanel` registers. */
export interface ISinglePanelOptions<T extends Widget> {
  /** The command that opens or reveals the panel. */
  command: string;
  /** The widget id (also the tracker's namespace). */
  id: string;
  label: string;
  caption: string;
  /** The tab's title. */
  title: string;
  icon: LabIcon;
  /** The launcher rank within `category`. */
  rank: number;
  category: string;
  /** Build the panel's content (a dynamic import keeps it out of the first bundle). */
  create: () => Promise<T>;
  /** Load the content's data: once when created, or on every reveal with `refreshOnReveal`. */
  load: (content: T) => Promise<void>;
  refreshOnReveal?: boolean;
  /** The restorer's name for the panel (default: `id`), kept stable across releases. */
  restoreName?: string;
  palette: ICommandPalette | null;
  launcher: ILauncher | null;
  restorer: ILayoutRestorer | null;
}

/** Register the command opening (or revealing) one main-area panel, with palette,
 * launcher and restorer entries. */
export function singlePanel<T extends Widget>(
  app: JupyterFrontEnd,
  options: ISinglePanelOptions<T>
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
      let created = false;
      if (!current || current.isDisposed) {
        const content = await options.create();
        current = new MainAreaWidget({ content });
        current.id = options.id;
        current.title.label = options.title;
        current.title.icon = options.icon;
        current.title.closable = true;
        void tracker.add(current);
        created = true;
      }
      if (!current.isAttached) {
        app.shell.add(current, 'main');
      }
      app.shell.activateById(current.id);
      if (created || options.refreshOnReveal) {
        void options.load(current.content);
      }
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
  const restoreName = options.restoreName ?? options.id;
  void options.restorer?.restore(tracker, {
    command: options.command,
    name: () => restoreName
  });
}
