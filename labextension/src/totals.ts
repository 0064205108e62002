/**
 * The header the kernel sends with every snapshot and delta (`totals`): its parent agents
 * and fan-out groups, validated. Pure module (test/tree.test.ts).
 */

import { Totals } from './protocol';

/** One parent agent, as `totals.agents` lists it. */
export interface IAgentSummary {
  name: string;
  /** The owner id its children carry: "agent:NAME". */
  owner: string;
  /** Results queued for the agent's next turn. */
  waiting: number;
  children: number;
  /** Children not ended yet. */
  live: number;
}

/** One fan-out group, as `totals.groups` lists it (or as its tasks add up, without one). */
export interface IGroupSummary {
  id: string;
  name: string | null;
  goal: string;
  total: number;
  /** Tasks that ended, failed ones included. */
  done: number;
  failed: number;
  /** Tasks waiting for a person to approve a tool call (the card may hide them: say so). */
  awaiting: number;
  tokens: number;
  /** Known cost in USD; null when no call had a known price. */
  cost_usd: number | null;
  /** Tasks whose calls have no known price. */
  cost_unknown: number;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

/** `totals.agents`, validated; anything malformed is left out. */
export function agentsOf(totals: Totals): IAgentSummary[] {
  const list = Array.isArray(totals.agents) ? totals.agents : [];
  return list.filter(isObject).flatMap(a =>
    typeof a.name === 'string' && typeof a.owner === 'string'
      ? [{ name: a.name, owner: a.owner, waiting: num(a.waiting), children: num(a.children), live: num(a.live) }]
      : []
  );
}

/** `totals.groups`, validated, by id. */
export function groupsOf(totals: Totals): Map<string, IGroupSummary> {
  const list = Array.isArray(totals.groups) ? totals.groups : [];
  const out = new Map<string, IGroupSummary>();
  for (const g of list.filter(isObject)) {
    if (typeof g.id !== 'string') {
      continue;
    }
    out.set(g.id, {
      id: g.id,
      name: typeof g.name === 'string' ? g.name : null,
      goal: typeof g.goal === 'string' ? g.goal : '',
      total: num(g.total),
      done: num(g.done),
      failed: num(g.failed),
      awaiting: isObject(g.counts) ? num(g.counts.awaiting_approval) : 0,
      tokens: num(g.tokens),
      cost_usd: typeof g.cost_usd === 'number' ? g.cost_usd : null,
      cost_unknown: num(g.cost_unknown)
    });
  }
  return out;
}

