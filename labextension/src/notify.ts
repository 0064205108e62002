/**
 * JupyterLab notifications: one per task that succeeds, fails or is cancelled (with an action
 * to collect the result into a variable), one per fan-out group when its last task ends
 * (never one per item), and one per tool call that waits for approval
 * (Approve / Deny / Show), withdrawn once the call is decided anywhere.
 */

import { Notification } from '@jupyterlab/apputils';

import { approveAll, approveCall, collectIntoVariable, denyCall, IOutcome } from './actions';
import { approvalNotice, groupApprovalNotice } from './approvals';
import { IApprovalArgs, IFinishedArgs } from './controller';
import { IAskedCall, approvalKey, finishNotice, groupNotice } from './model';
import { groupsOf } from './totals';

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

/** One notification per fan-out group with waiting calls, by kernel id and group id. */
const groupNotices = new Map<string, { id: string; calls: Map<string, IAskedCall> }>();

/**
 * Announce calls that started waiting; withdraw the notices of calls no longer waiting.
 * Calls of a fan-out group's tasks share one notice per group (never one per item), with
 * "Approve all".
 */
export function notifyApprovals(args: IApprovalArgs, showPanel: () => void): void {
  const kernel = args.link.kernel.id;
  const touched = new Set<string>();
  for (const key of args.settled) {
    const id = waiting.get(`${kernel}:${key}`);
    if (id !== undefined) {
      waiting.delete(`${kernel}:${key}`);
      Notification.dismiss(id);
    }
    for (const [groupKey, notice] of groupNotices) {
      if (groupKey.startsWith(`${kernel}:`) && notice.calls.delete(key)) {
        touched.add(groupKey);
      }
    }
  }
  for (const asked of args.asked) {
    const { task, call } = asked;
    if (task.group_id) {
      const groupKey = `${kernel}:${task.group_id}`;
      const notice = groupNotices.get(groupKey) ?? { id: '', calls: new Map() };
      notice.calls.set(approvalKey(task.id, call.call_id), asked);
      groupNotices.set(groupKey, notice);
      touched.add(groupKey);
      continue;
    }
    const id = Notification.emit(`${approvalNotice(task, call)}${where(args)}`, 'warning', {
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
  for (const groupKey of touched) {
    showGroupNotice(args, groupKey, showPanel);
  }
}

/** Emit, update or withdraw the one notice of a group's waiting calls. */
function showGroupNotice(args: IApprovalArgs, groupKey: string, showPanel: () => void): void {
  const notice = groupNotices.get(groupKey);
  if (notice === undefined) {
    return;
  }
  const calls = [...notice.calls.values()];
  if (calls.length === 0) {
    groupNotices.delete(groupKey);
    if (notice.id) {
      Notification.dismiss(notice.id);
    }
    return;
  }
  const groupId = groupKey.slice(groupKey.indexOf(':') + 1);
  const group = groupsOf(args.link.state.totals).get(groupId) ?? { id: groupId, name: null };
  const message = `${groupApprovalNotice(group, calls)}${where(args)}`;
  const actions = [
    {
      label: 'Approve all',
      caption: calls.map(({ task, call }) => `${task.id}: ${call.tool} (${call.call_id})`).join('\n'),
      displayType: 'accent' as const,
      callback: () => {
        groupNotices.delete(groupKey); // this notice closes; calls that come later get a new one
        void approveAll(args.link, calls).then(report);
      }
    },
    { label: 'Show', caption: 'Open the Hermes tasks panel', callback: showPanel }
  ];
  if (notice.id && Notification.manager.has(notice.id)) {
    Notification.update({ id: notice.id, message, type: 'warning', autoClose: false, actions });
  } else {
    notice.id = Notification.emit(message, 'warning', { autoClose: false, actions });
  }
}

function where(args: { notebook: string }): string {
  return args.notebook ? ` (${args.notebook})` : '';
}

function report(outcome: IOutcome | null): void {
  if (outcome !== null) {
    Notification.emit(outcome.text, outcome.ok ? 'success' : 'error', {
      autoClose: AUTO_CLOSE_MS
    });
  }
}
