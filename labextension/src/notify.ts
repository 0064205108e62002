/**
 * JupyterLab notifications: one per task that succeeds, fails or is cancelled (with an action
 * to collect the result into a variable), one per fan-out group when its last task ends
 * (never one per item), and one per tool call that waits for approval
 * (Approve / Deny / Show), withdrawn once the call is decided anywhere.
 */

import { Notification } from '@jupyterlab/apputils';

import { approveCall, collectIntoVariable, denyCall, IOutcome } from './actions';
import { approvalNotice } from './approvals';
import { IApprovalArgs, IFinishedArgs } from './controller';
import { approvalKey, finishNotice, groupNotice } from './model';

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
            void collectIntoVariable(args.link, task).then(report);
          }
        },
        { label: 'Show', caption: 'Open the Hermes tasks panel', callback: showPanel }
      ]
    });
  }
  // One notice per fan-out group, when its last task ends: never one per item.
  for (const group of args.groups) {
    const { kind, message } = groupNotice(group);
    const where = args.notebook ? ` (${args.notebook})` : '';
    Notification.emit(`${message}${where}`, kind, {
      autoClose: kind === 'error' ? false : AUTO_CLOSE_MS,
      actions: [{ label: 'Show', caption: 'Open the Hermes tasks panel', callback: showPanel }]
    });
  }
}

/** Notification ids of the calls waiting now, by kernel id and `approvalKey`. */
const waiting = new Map<string, string>();

/** Announce calls that started waiting; withdraw the notices of calls no longer waiting. */
export function notifyApprovals(args: IApprovalArgs, showPanel: () => void): void {
  const kernel = args.link.kernel.id;
  for (const key of args.settled) {
    const id = waiting.get(`${kernel}:${key}`);
    if (id !== undefined) {
      waiting.delete(`${kernel}:${key}`);
      Notification.dismiss(id);
    }
  }
  for (const { task, call } of args.asked) {
    const where = args.notebook ? ` (${args.notebook})` : '';
    const id = Notification.emit(`${approvalNotice(task, call)}${where}`, 'warning', {
      autoClose: false,
      actions: [
        {
          label: 'Approve',
          caption: `Let ${call.tool} run`,
          displayType: 'accent',
          callback: () => {
            void approveCall(args.link, task, call.call_id).then(report);
          }
        },
        {
          label: 'Deny',
          caption: 'Refuse the call (give a reason in the panel); the model reads that it was denied',
          displayType: 'warn',
          callback: () => {
            void denyCall(args.link, task, call.call_id, '').then(report);
          }
        },
        { label: 'Show', caption: 'Open the Hermes tasks panel', callback: showPanel }
      ]
    });
    waiting.set(`${kernel}:${approvalKey(task.id, call.call_id)}`, id);
  }
}

function report(outcome: IOutcome | null): void {
  if (outcome !== null) {
    Notification.emit(outcome.text, outcome.ok ? 'success' : 'error', {
      autoClose: AUTO_CLOSE_MS
    });
  }
}
