/**
 * The three things a person can do to a task from the UI, each answered by the
 * kernel with success or a one-line error.
 */

import { InputDialog } from '@jupyterlab/apputils';

import { KernelLink } from './link';
import { suggestedVariable, taskLabel } from './model';
import { ITask } from './protocol';

export interface IOutcome {
  ok: boolean;
  text: string;
}

async function ask(
  link: KernelLink,
  op: 'steer' | 'cancel' | 'collect',
  fields: { task: string; message?: string; variable?: string }
): Promise<IOutcome> {
  try {
    const reply = await link.request(op, fields);
    return reply.ok
      ? { ok: true, text: reply.message ?? 'Done.' }
      : { ok: false, text: reply.error ?? 'The kernel refused.' };
  } catch (err) {
    return { ok: false, text: String((err as Error).message ?? err) };
  }
}

export function steerTask(link: KernelLink, task: ITask, message: string): Promise<IOutcome> {
  return ask(link, 'steer', { task: task.id, message });
}

export function cancelTask(link: KernelLink, task: ITask): Promise<IOutcome> {
  return ask(link, 'cancel', { task: task.id });
}

/** Ask for a variable name, then have the kernel bind the task's result to it. */
export async function collectIntoVariable(
  link: KernelLink,
  task: ITask
): Promise<IOutcome | null> {
  const answer = await InputDialog.getText({
    title: `Collect ${taskLabel(task)} into a variable`,
    label: 'Python variable name',
    text: suggestedVariable(task),
    okLabel: 'Collect'
  });
  const variable = (answer.value ?? '').trim();
  if (!answer.button.accept || !variable) {
    return null;
  }
  return ask(link, 'collect', { task: task.id, variable });
}
