/**
 * One JupyterLab notification per task that succeeds, fails or is cancelled,
 * with an action to collect the result into a variable.
 */

import { Notification } from '@jupyterlab/apputils';

import { collectIntoVariable } from './actions';
import { IFinishedArgs } from './controller';
import { finishNotice } from './model';

/** How long success and cancel toasts stay; failures stay until dismissed. */
const AUTO_CLOSE_MS = 10_000;

export function notifyFinished(args: IFinishedArgs, showPanel: () => void): void {
  for (const task of args.tasks) {
    const { kind, message } = finishNotice(task);
    const where = args.notebook ? ` (${args.notebook})` : '';
    Notification.emit(`${message}${where}`, kind, {
      autoClose: kind === 'error' ? false : AUTO_CLOSE_MS,
      actions: [
        {
          label: 'Collect into variable',
          caption: 'Bind the TaskResult to a Python variable in the kernel',
          displayType: 'accent',
          callback: () => {
            void collectIntoVariable(args.link, task).then(outcome => {
              if (outcome !== null) {
                Notification.emit(outcome.text, outcome.ok ? 'success' : 'error', {
                  autoClose: AUTO_CLOSE_MS
                });
              }
            });
          }
        },
        { label: 'Show', caption: 'Open the Hermes tasks panel', callback: showPanel }
      ]
    });
  }
}
