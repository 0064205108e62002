/**
 * How a tool call waiting for approval reads, in the panel and in its notification.
 * Pure module (test/tree.test.ts).
 */

import { IAskedCall, taskLabel } from './model';
import { IPendingApproval, ITask } from './protocol';

/**
 * Characters of a call's arguments shown in a notification (JupyterLab cuts a notification
 * at 140 characters); the panel shows them whole.
 */
export const NOTICE_ARGUMENTS = 80;

/**
 * A call's arguments to show: `{"command": "ls -la"}` reads as `command: ls -la`, one line per
 * argument; anything that is not a JSON object is shown as sent.
 */
export function argumentsText(json: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return json;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return json;
  }
  return Object.entries(parsed as Record<string, unknown>)
    .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join('\n');
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** "Hermes task review (t3) asks to run run_shell (call c1): command: rm -rf build — why". */
export function approvalNotice(task: ITask, call: IPendingApproval): string {
  const args = clip(argumentsText(call.arguments).replace(/\s*\n\s*/g, '; '), NOTICE_ARGUMENTS);
  const why = call.reason ? ` — ${call.reason}` : '';
  return `Hermes task ${taskLabel(task)} asks to run ${call.tool} (call ${call.call_id}): ${args}${why}`;
}

/** "Hermes group regions (g1): 2 tool calls await approval (run_shell)." */
export function groupApprovalNotice(
  group: { id: string; name: string | null },
  calls: readonly IAskedCall[]
): string {
  const label = group.name ? `${group.name} (${group.id})` : group.id;
  const n = calls.length;
  const tools = [...new Set(calls.map(c => c.call.tool))].join(', ');
  const verb = n === 1 ? 'tool call awaits' : 'tool calls await';
  return `Hermes group ${label}: ${n} ${verb} approval (${tools}).`;
}
