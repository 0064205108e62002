/**
 * What a person can do to a task from the UI (steer, cancel, collect, approve or deny a
 * waiting tool call), each answered by the kernel with success or a one-line error.
 */

import { Dialog, InputDialog, showDialog } from '@jupyterlab/apputils';

import { KernelLink } from './link';
import { IAskedCall, suggestedVariable, taskLabel } from './model';
import { IReplyMsg, IRequestFields, ITask } from './protocol';

type TaskOp = 'steer' | 'cancel' | 'collect' | 'approve' | 'deny';

export interface IOutcome {
  ok: boolean;
  text: string;
}

async function send(
  link: KernelLink,
  op: TaskOp,
  fields: IRequestFields
): Promise<IReplyMsg | IOutcome> {
  try {
    return await link.request(op, fields);
  } catch (err) {
    return { ok: false, text: String((err as Error).message ?? err) };
  }
}

function outcome(reply: IReplyMsg | IOutcome): IOutcome {
  if ('text' in reply) {
    return reply;
  }
  return reply.ok
    ? { ok: true, text: reply.message ?? 'Done.' }
    : { ok: false, text: reply.error ?? 'The kernel refused.' };
}

async function ask(
  link: KernelLink,
  op: TaskOp,
  fields: IRequestFields
): Promise<IOutcome> {
  return outcome(await send(link, op, fields));
}

export function steerTask(link: KernelLink, task: ITask, message: string): Promise<IOutcome> {
  return ask(link, 'steer', { task: task.id, message });
}

/** Let the waiting tool call `callId` of `task` run. */
export function approveCall(link: KernelLink, task: ITask, callId: string): Promise<IOutcome> {
  return ask(link, 'approve', { task: task.id, call_id: callId });
}

/** Refuse the waiting tool call `callId`; the model reads `reason` as the call's result. */
export function denyCall(
  link: KernelLink,
  task: ITask,
  callId: string,
  reason: string
): Promise<IOutcome> {
  return ask(link, 'deny', { task: task.id, call_id: callId, reason });
}

/**
 * Approve each of `calls` (a fan-out group's waiting calls), one request after another;
 * one line says how many went through and the first refusal.
 */
export async function approveAll(link: KernelLink, calls: readonly IAskedCall[]): Promise<IOutcome> {
  let approved = 0;
  let refusal = '';
  for (const { task, call } of calls) {
    const outcome = await approveCall(link, task, call.call_id);
    if (outcome.ok) {
      approved += 1;
    } else if (!refusal) {
      refusal = outcome.text;
    }
  }
  const n = calls.length;
  const text = `Approved ${approved} of ${n} waiting call${n === 1 ? '' : 's'}.`;
  return refusal ? { ok: false, text: `${text} ${refusal}` } : { ok: true, text };
}

export function cancelTask(link: KernelLink, task: ITask): Promise<IOutcome> {
  return ask(link, 'cancel', { task: task.id });
}

/**
 * Ask for a variable name, then have the kernel bind the task's result to it.
 *
 * Offers `result_<id>`; kept as offered, the kernel binds a free variant if it is taken. A
 * name the user typed that already holds something is replaced only after a confirmation.
 */
export async function collectIntoVariable(
  link: KernelLink,
  task: ITask
): Promise<IOutcome | null> {
  const offered = suggestedVariable(task);
  const answer = await InputDialog.getText({
    title: `Collect ${taskLabel(task)} into a variable`,
    label: 'Python variable name',
    text: offered,
    okLabel: 'Collect'
  });
  const variable = (answer.value ?? '').trim();
  if (!answer.button.accept || !variable) {
    return null;
  }
  const fields = { task: task.id, variable, free: variable === offered };
  const reply = await send(link, 'collect', fields);
  if ('text' in reply || reply.ok || reply.code !== 'variable_exists') {
    return outcome(reply);
  }
  const choice = await confirmReplace(reply);
  if (choice === null) {
    return { ok: false, text: `Nothing collected: \`${variable}\` is unchanged.` };
  }
  return ask(
    link,
    'collect',
    choice === 'replace'
      ? { ...fields, free: false, overwrite: true }
      : { ...fields, variable: choice, free: true }
  );
}

/** "`review` already holds a Task": replace it, use the free name, or leave it. */
async function confirmReplace(reply: IReplyMsg): Promise<'replace' | string | null> {
  const suggestion = reply.suggestion ?? '';
  const buttons = [
    Dialog.cancelButton(),
    ...(suggestion ? [Dialog.okButton({ label: `Use ${suggestion}` })] : []),
    Dialog.warnButton({ label: 'Replace' })
  ];
  const result = await showDialog({
    title: 'Replace a variable?',
    body: reply.error ?? `\`${reply.variable}\` already holds a value.`,
    buttons
  });
  if (!result.button.accept) {
    return null;
  }
  return result.button.displayType === 'warn' ? 'replace' : suggestion;
}
