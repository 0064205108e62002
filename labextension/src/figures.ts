/**
 * Money and totals as the panel writes them: a task's cost, the header line, a group card's
 * line. Pure module (test/tree.test.ts).
 */

import { formatTokens } from './model';
import { ITask, Totals } from './protocol';
import { IGroupSummary } from './tree';

/**
 * "$4.56" from a dollar, "$0.0123" from a cent, two significant digits below ("$0.000033":
 * one short call costs that much), "<$0.000001" below that, "$0" for nothing spent.
 */
export function formatCost(usd: number): string {
  if (usd === 0) {
    return '$0';
  }
  if (usd < 0.000001) {
    return '<$0.000001';
  }
  if (usd < 0.01) {
    return `$${usd.toPrecision(2)}`;
  }
  return usd < 1 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;
}

/** What a task cost: "$0.0012", "no price" (calls of unknown cost), or '' (no call yet). */
export function taskCost(task: ITask): string {
  if (typeof task.cost_usd === 'number') {
    return formatCost(task.cost_usd);
  }
  return task.api_calls > 0 && 'cost_usd' in task ? 'no price' : '';
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** "$0.0123 (2 tasks without a price)", "cost unknown (1 task without a price)", or ''. */
export function costText(cost: unknown, unknown: unknown): string {
  const n = typeof unknown === 'number' && unknown > 0 ? unknown : 0;
  const without = n > 0 ? ` (${plural(n, 'task')} without a price)` : '';
  if (typeof cost === 'number') {
    return `${formatCost(cost)}${without}`;
  }
  return n > 0 ? `cost unknown${without}` : '';
}

/** The header's figures: "1.2k tokens · 4 calls · $0.0123 (1 task without a price)". */
export function totalsLine(totals: Totals): string {
  const tokens = typeof totals.total_tokens === 'number' ? totals.total_tokens : null;
  const calls = typeof totals.api_calls === 'number' ? totals.api_calls : null;
  const parts = [
    tokens === null ? '' : `${formatTokens(tokens)} tokens`,
    calls === null ? '' : plural(calls, 'call'),
    costText(totals.cost_usd, totals.cost_unknown)
  ];
  return parts.filter(Boolean).join(' · ');
}

/** A group card's line: "3/5 done · 1 failed · 1 awaiting approval · 1.2k tokens · $0.0040". */
export function groupLine(group: IGroupSummary): string {
  const parts = [
    `${group.done}/${group.total} done`,
    group.failed > 0 ? `${group.failed} failed` : '',
    group.awaiting > 0 ? `${group.awaiting} awaiting approval` : '',
    `${formatTokens(group.tokens)} tokens`,
    costText(group.cost_usd, group.cost_unknown)
  ];
  return parts.filter(Boolean).join(' · ');
}
