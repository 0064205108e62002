/**
 * Plugin wiring: side panel, status-bar item, notifications and a command.
 *
 * Every dependency is optional so the same bundle runs in JupyterLab (≥ 4.4)
 * and in Notebook 7 (which has no status bar and no ILabShell).
 */

import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IStatusBar } from '@jupyterlab/statusbar';
import { LabIcon } from '@jupyterlab/ui-components';

import { HermesController } from './controller';
import { notifyApprovals, notifyFinished } from './notify';
import { HermesPanel, PANEL_ID } from './panel';
import { HermesStatus } from './statusbar';

const OPEN_COMMAND = 'hermes-jupyter:open-panel';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" d="M4 4h3v6.5h5V4h3v16h-3v-6.5H7V20H4z"/>
  <path class="jp-icon-warn0" fill="#f57c00" d="M17 6l5-2-2 5-1.2-1.2L17 9.6V6.9z"/>
</svg>`;

export const hermesIcon = new LabIcon({ name: 'hermes-jupyter:icon', svgstr: ICON_SVG });

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'hermes-jupyter:plugin',
  description: 'Live view of hermes_jupyter background agents in the active kernel.',
  autoStart: true,
  optional: [INotebookTracker, IStatusBar, ILayoutRestorer, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker | null,
    statusBar: IStatusBar | null,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null
  ) => {
    if (tracker === null) {
      // A page without notebooks (e.g. Notebook 7's file browser): nothing to follow.
      return;
    }
    const controller = new HermesController(tracker);
    const panel = new HermesPanel(controller, hermesIcon);
    app.shell.add(panel, 'right', { rank: 600 });
    restorer?.add(panel, PANEL_ID);

    const showPanel = () => app.shell.activateById(PANEL_ID);
    app.commands.addCommand(OPEN_COMMAND, {
      label: 'Show Hermes Tasks',
      caption: 'Background agents of the active notebook’s kernel',
      icon: hermesIcon,
      execute: showPanel
    });
    palette?.addItem({ command: OPEN_COMMAND, category: 'Hermes' });

    if (statusBar !== null) {
      const item = new HermesStatus(controller, showPanel);
      statusBar.registerStatusItem('hermes-jupyter:status', {
        item,
        align: 'left',
        rank: 10,
        isActive: () => item.isActive,
        activeStateChanged: item.activeStateChanged
      });
    }

    controller.finished.connect((_, args) => notifyFinished(args, showPanel));
    controller.approvals.connect((_, args) => notifyApprovals(args, showPanel));
  }
};

export default plugin;
