/**
 * The panel's task tree (the rule both faces share, FACES.md / docs/comm-protocol.md):
 *
 * - top level: the user's tasks (owner null) and one node per parent agent (from
 *   `totals.agents`, plus any owner "agent:NAME" seen on a task), with "N results waiting for
 *   the parent" when its `waiting` > 0;
 * - an agent's children under it; a task's children (`parent_id`) under that task;
 * - tasks of one fan-out group (`group_id`) as ONE group card (done/total, failed, tokens,
 *   cost; expandable to its tasks), placed where its first task would be.
 *
 * Pure module: no JupyterLab or DOM imports (test/tree.test.ts).
 */

import { IAskedCall, IState, ITaskEntry, orderedTasks, taskEnded } from './model';
import { ITask } from './protocol';
import { IAgentSummary, IGroupSummary, agentsOf, groupsOf } from './totals';

export { IAgentSummary, IGroupSummary } from './totals';

export type TreeNode =
  | { kind: 'task'; key: string; entry: ITaskEntry; children: TreeNode[] }
  | { kind: 'agent'; key: string; agent: IAgentSummary; children: TreeNode[] }
  | { kind: 'group'; key: string; group: IGroupSummary; children: TreeNode[] };

const ROOT = '';

/** A node as the flat list shows it: `depth` 0 at the top level. */
export interface IRow {
  node: TreeNode;
  depth: number;
  /** The key of the node it sits under, or null at the top level. */
  parent: string | null;
}

/** A group the header does not list (an older kernel, or a delta in between): from its tasks. */
export function groupFromTasks(id: string, tasks: readonly ITask[]): IGroupSummary {
  let cost: number | null = null;
  let unknown = 0;
  for (const t of tasks) {
    if (typeof t.cost_usd === 'number') {
      cost = (cost ?? 0) + t.cost_usd;
    } else if (t.api_calls > 0) {
      unknown += 1;
    }
  }
  return {
    id,
    name: null,
    goal: tasks[0]?.goal ?? '',
    total: tasks.length,
    done: tasks.filter(t => taskEnded(t)).length,
    failed: tasks.filter(t => t.state === 'failed').length,
    awaiting: tasks.filter(t => t.state === 'awaiting_approval' && !taskEnded(t)).length,
    tokens: tasks.reduce((n, t) => n + t.tokens, 0),
    cost_usd: cost,
    cost_unknown: unknown
  };
}

/** The key of the node a task sits under: its parent task, its agent, or the top level. */
function containerOf(task: ITask, ids: ReadonlySet<string>): string {
  if (task.parent_id && task.parent_id !== task.id && ids.has(task.parent_id)) {
    return `task:${task.parent_id}`;
  }
  const owner = task.owner;
  if (typeof owner === 'string' && owner.startsWith('agent:')) {
    return `agent:${owner}`;
  }
  if (typeof owner === 'string' && owner !== task.id && ids.has(owner)) {
    return `task:${owner}`;
  }
  return ROOT;
}

/** Containers, with any task whose chain of parents loops moved to the top level. */
function containers(tasks: readonly ITask[]): Map<string, string> {
  const ids = new Set(tasks.map(t => t.id));
  const within = new Map(tasks.map(t => [t.id, containerOf(t, ids)]));
  for (const t of tasks) {
    const seen = new Set<string>([t.id]);
    let at = within.get(t.id) ?? ROOT;
    while (at.startsWith('task:')) {
      const up = at.slice(5);
      if (seen.has(up)) {
        within.set(t.id, ROOT);
        break;
      }
      seen.add(up);
      at = within.get(up) ?? ROOT;
    }
  }
  return within;
}

/** The tree of every task in `state`, siblings in display order (see `orderedTasks`). */
export function buildTree(state: IState): TreeNode[] {
  const entries = orderedTasks(state);
  const within = containers(entries.map(e => e.task));
  const byContainer = new Map<string, ITaskEntry[]>();
  for (const entry of entries) {
    const key = within.get(entry.task.id) ?? ROOT;
    const list = byContainer.get(key);
    if (list === undefined) {
      byContainer.set(key, [entry]);
    } else {
      list.push(entry);
    }
  }
  const groups = groupsOf(state.totals);
  const nodesIn = (key: string): TreeNode[] =>
    collapseGroups(key, byContainer.get(key) ?? [], groups, nodesIn);

  const agents = agentsOf(state.totals);
  const listed = new Set(agents.map(a => a.owner));
  for (const key of byContainer.keys()) {
    const owner = key.startsWith('agent:') ? key.slice(6) : null;
    if (owner !== null && !listed.has(owner)) {
      // A task of an agent the header does not list (yet): it still gets its node.
      const children = byContainer.get(key) ?? [];
      listed.add(owner);
      agents.push({
        name: owner.slice(6),
        owner,
        waiting: 0,
        children: children.length,
        live: children.filter(e => !taskEnded(e.task)).length
      });
    }
  }
  const agentNodes: TreeNode[] = agents.map(agent => ({
    kind: 'agent',
    key: `agent:${agent.owner}`,
    agent,
    children: nodesIn(`agent:${agent.owner}`)
  }));
  return [...agentNodes, ...nodesIn(ROOT)];
}

/** Siblings in order, the tasks of each group replaced by one card where its first task was. */
function collapseGroups(
  container: string,
  entries: readonly ITaskEntry[],
  groups: ReadonlyMap<string, IGroupSummary>,
  nodesIn: (key: string) => TreeNode[]
): TreeNode[] {
  const out: TreeNode[] = [];
  const cards = new Map<string, TreeNode[]>();
  for (const entry of entries) {
    const id = entry.task.id;
    const node: TreeNode = { kind: 'task', key: `task:${id}`, entry, children: nodesIn(`task:${id}`) };
    const gid = entry.task.group_id;
    if (typeof gid !== 'string' || gid === '') {
      out.push(node);
      continue;
    }
    let members = cards.get(gid);
    if (members === undefined) {
      members = [];
      cards.set(gid, members);
      const tasks = entries.filter(e => e.task.group_id === gid).map(e => e.task);
      out.push({
        kind: 'group',
        key: `group:${gid}${container ? `@${container}` : ''}`,
        group: groups.get(gid) ?? groupFromTasks(gid, tasks),
        children: members
      });
    }
    members.push(node);
  }
  return out;
}

/**
 * The tree as the panel's flat list: each node followed by its children, one level deeper.
 * A group card's tasks show only when `expanded(key)`; agents and tasks always show theirs.
 */
export function flatten(
  nodes: readonly TreeNode[],
  expanded: (key: string) => boolean,
  depth = 0,
  parent: string | null = null
): IRow[] {
  const rows: IRow[] = [];
  for (const node of nodes) {
    rows.push({ node, depth, parent });
    if (node.kind !== 'group' || expanded(node.key)) {
      rows.push(...flatten(node.children, expanded, depth + 1, node.key));
    }
  }
  return rows;
}

/** "1 result waiting for the parent", or '' when none wait. */
export function waitingText(waiting: number): string {
  if (waiting <= 0) {
    return '';
  }
  return `${waiting} result${waiting === 1 ? '' : 's'} waiting for the parent`;
}

/** Every tool call waiting for approval in the tasks under `node`, in display order. */
export function waitingCalls(node: TreeNode): IAskedCall[] {
  const calls: IAskedCall[] = [];
  if (node.kind === 'task' && !taskEnded(node.entry.task)) {
    const task = node.entry.task;
    calls.push(...(task.pending_approvals ?? []).map(call => ({ task, call })));
  }
  for (const child of node.children) {
    calls.push(...waitingCalls(child));
  }
  return calls;
}
