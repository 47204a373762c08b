/**
 * Parked cells in open notebooks (docs/notebooks.md, "Parking").
 *
 * When the run a cell parked on ends, the kernel that ran the cell sends
 * `update_display_data` for the display `openfoal-gate-<gateId>`. JupyterLab applies such an
 * update only to outputs it displayed itself; a notebook run by papermill or nbclient and
 * opened afterwards holds the parked output (with `metadata.openfoal.parkedGate`) but no
 * display id. This plugin replaces those outputs in every open notebook of that kernel.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ISessionContext } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { KernelMessage } from '@jupyterlab/services';

/** The display id prefix of a parked cell's output. */
export const PARKED_DISPLAY_PREFIX = 'openfoal-gate-';

/** The part of a code cell's output list used here. */
interface IOutputs {
  readonly length: number;
  get(index: number): { metadata?: { [key: string]: unknown } };
  set(index: number, output: { [key: string]: unknown }): void;
}

/** Replace the parked outputs of the notebook this update is for; returns how many. */
export function applyParkedResult(
  panel: NotebookPanel,
  msg: KernelMessage.IMessage
): number {
  if (msg.header.msg_type !== 'update_display_data') {
    return 0;
  }
  const content = (msg as KernelMessage.IUpdateDisplayDataMsg).content;
  const displayId = String(content.transient?.display_id ?? '');
  const cells = panel.content.model?.cells;
  if (!displayId.startsWith(PARKED_DISPLAY_PREFIX) || !cells) {
    return 0;
  }
  const gateId = displayId.slice(PARKED_DISPLAY_PREFIX.length);
  let replaced = 0;
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type !== 'code') {
      continue;
    }
    const outputs = (cell as unknown as { outputs: IOutputs }).outputs;
    for (let j = 0; j < outputs.length; j++) {
      const meta = outputs.get(j).metadata?.openfoal as
        { parkedGate?: string } | undefined;
      if (meta?.parkedGate === gateId) {
        outputs.set(j, {
          output_type: 'display_data',
          data: content.data,
          metadata: content.metadata
        });
        replaced++;
      }
    }
  }
  return replaced;
}

/** Follows the kernels of open notebooks for results of parked cells. */
export const parkedPlugin: JupyterFrontEndPlugin<void> = {
  id: 'openfoal:parked-cells',
  description:
    'Shows the result of an approved parked gate in the open notebook whose cell parked.',
  autoStart: true,
  optional: [INotebookTracker],
  activate: (_app: JupyterFrontEnd, tracker: INotebookTracker | null): void => {
    tracker?.widgetAdded.connect((_, panel) => {
      const onMessage = (
        _context: ISessionContext,
        msg: KernelMessage.IMessage
      ): void => {
        applyParkedResult(panel, msg);
      };
      panel.sessionContext.iopubMessage.connect(onMessage);
      panel.disposed.connect(() =>
        panel.sessionContext.iopubMessage.disconnect(onMessage)
      );
    });
  }
};
