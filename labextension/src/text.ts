/**
 * How the panel and its notifications word tasks and groups: times, token counts, labels,
 * finish notices, the variable name offered on collect, lines of earlier kernels' tasks.
 *
 * Pure module (test/model.test.ts, through model.ts which re-exports it).
 */

import { IHistoryTask, ITask } from './protocol';
import { IGroupSummary } from './totals';

export function formatElapsed(seconds: number): string {
  if (seconds < 60) {
    return `${seconds.toFixed(1)}s`;
  }
  const s = Math.floor(seconds);
  if (s < 3600) {
    return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  }
  return `${Math.floor(s / 3600)}h ${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}

export function formatTokens(n: number): string {
  if (n < 1000) {
    return String(n);
  }
  if (n < 1_000_000) {
    return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  }
  return `${(n / 1_000_000).toFixed(1)}M`;
}

export function taskLabel(task: ITask): string {
  return task.name ? `${task.name} (${task.id})` : task.id;
}

export type NotificationKind = 'success' | 'error' | 'warning';

/** What the finish notification of one task says. */
export function finishNotice(task: ITask): { kind: NotificationKind; message: string } {
  const label = taskLabel(task);
  const took = formatElapsed(task.elapsed_s);
  switch (task.state) {
    case 'succeeded':
      return { kind: 'success', message: `Hermes task ${label} succeeded in ${took}.` };
    case 'failed':
      return {
        kind: 'error',
        message: `Hermes task ${label} failed: ${firstLine(task.error) || 'no error message'}`
      };
    case 'cancelled':
      return { kind: 'warning', message: `Hermes task ${label} was cancelled after ${took}.` };
    default:
      return { kind: 'warning', message: `Hermes task ${label} was ${task.state}.` };
  }
}

/** What the notification of a fan-out group whose last task ended says. */
export function groupNotice(group: IGroupSummary): { kind: NotificationKind; message: string } {
  const label = group.name ? `${group.name} (${group.id})` : group.id;
  const failed = group.failed > 0 ? `, ${group.failed} failed` : '';
  const kind = group.failed > 0 ? 'error' : 'success';
  return { kind, message: `Hermes group ${label}: ${group.done}/${group.total} done${failed}.` };
}

/**
 * The variable name offered when collecting a task: `result_<id>`, never the task's name
 * (in `review = %delegate -n review ...` that name holds the Task). Sent with `free: true`
 * when the user keeps it, so the kernel takes a free variant if the name is taken.
 */
export function suggestedVariable(task: ITask): string {
  return `result_${task.id.replace(/[^A-Za-z0-9_]+/g, '_')}`;
}

/** One line for a task of an earlier kernel: "t3 'review' · interrupted (kernel stopped)". */
export function historyLine(task: IHistoryTask): string {
  const label = task.name ? `${task.id} '${task.name}'` : task.id;
  const why =
    task.state === 'interrupted'
      ? ' — its kernel stopped before it ended'
      : task.error
        ? ` — ${firstLine(task.error)}`
        : task.summary
          ? ` — ${firstLine(task.summary)}`
          : '';
  return `${label} · ${task.state}${why}`;
}

function firstLine(text: string | null): string {
  return (text ?? '').split('\n', 1)[0].trim();
}
