/**
 * Pure state logic of the Hermes panel: comm messages and kernel life-cycle
 * events in, task list, counts and "which tasks just finished" out.
 *
 * No JupyterLab or DOM imports: tested with node's test runner (test/model.test.ts).
 */

import {
  IDeltaMsg,
  IHistoryTask,
  IPendingApproval,
  ISnapshotMsg,
  ITask,
  Totals
} from './protocol';
import { IGroupSummary, groupsOf } from './totals';

export {
  NotificationKind,
  finishNotice,
  formatElapsed,
  formatTokens,
  groupNotice,
  historyLine,
  suggestedVariable,
  taskLabel
} from './text';
import { isTerminal, stateRank } from './states';

/** Whether the task has ended, by its own `terminal` flag or (older kernels) its state. */
export function taskEnded(task: { state: string; terminal?: boolean }): boolean {
  return isTerminal(task.state, task.terminal);
}

/** Where the link to the active kernel stands. */
export type ConnectionState =
  /** No notebook, or a notebook without a kernel. */
  | 'no-kernel'
  /** Comm opened, waiting for the snapshot. */
  | 'connecting'
  /** Snapshot received; deltas flowing. */
  | 'connected'
  /** The kernel has no `hermes_jupyter` comm target (extension not loaded). */
  | 'unavailable'
  /** The kernel refused us (protocol mismatch) or the link broke; see `error`. */
  | 'error';

export interface ITaskEntry {
  readonly task: ITask;
  /** `Date.now()` when this version arrived: running tasks tick from here. */
  readonly receivedAt: number;
}

export interface IState {
  readonly connection: ConnectionState;
  /**
   * The kernel cannot answer the panel until its running cell ends (no subshells):
   * the comm is queued behind the cell (connecting), or the cell may load hermes (unavailable).
   */
  readonly waiting: boolean;
  readonly error: string | null;
  /** Highest message sequence number applied on the current comm. */
  readonly seq: number;
  readonly tasks: ReadonlyMap<string, ITaskEntry>;
  readonly totals: Totals;
  /** Ids of tasks already seen terminal: each one notifies at most once. */
  readonly seenTerminal: ReadonlySet<string>;
  /** Tasks of earlier kernels (journal), oldest first: read-only. */
  readonly history: readonly IHistoryTask[];
  /** Requests the kernel answers. */
  readonly ops: ReadonlySet<string>;
  /** Tool calls waiting for approval now, as `approvalKey`s. */
  readonly pending: ReadonlySet<string>;
  /** Fan-out groups the header listed, by id: whether every task of it had ended. */
  readonly groupsDone: ReadonlyMap<string, boolean>;
}

/** What a kernel of the first release answers (its snapshot has no `ops`). */
const FIRST_OPS = ['steer', 'cancel', 'collect', 'snapshot'];

export type Action =
  | { type: 'connecting' }
  | { type: 'snapshot'; msg: ISnapshotMsg; now: number }
  | { type: 'delta'; msg: IDeltaMsg; now: number }
  | { type: 'unavailable' }
  | { type: 'error'; error: string }
  | { type: 'waiting'; waiting: boolean }
  /** Kernel restarted, died, or the notebook switched kernels: forget every task. */
  | { type: 'reset'; connection: ConnectionState };

export interface IReduction {
  readonly state: IState;
  /**
   * Tasks that reached a terminal state in this step and were running or queued before;
   * never a task of a fan-out group (its group announces itself, once, in `groupsFinished`).
   */
  readonly finished: ITask[];
  /** Fan-out groups whose last task ended in this step. */
  readonly groupsFinished: IGroupSummary[];
  /** Tool calls that started waiting for approval in this step (each announced once). */
  readonly asked: IAskedCall[];
  /** `approvalKey`s of calls no longer waiting (decided, task gone, kernel reset). */
  readonly settled: string[];
}

export interface IAskedCall {
  readonly task: ITask;
  readonly call: IPendingApproval;
}

/** Identifies one pending call of one task: "t3/call_1". */
export function approvalKey(taskId: string, callId: string): string {
  return `${taskId}/${callId}`;
}

export function initialState(connection: ConnectionState = 'no-kernel'): IState {
  return {
    connection,
    waiting: false,
    error: null,
    seq: 0,
    tasks: new Map(),
    totals: {},
    seenTerminal: new Set(),
    history: [],
    ops: new Set(FIRST_OPS),
    pending: new Set(),
    groupsDone: new Map()
  };
}

export function reduce(state: IState, action: Action): IReduction {
  const { state: reduced, finished: ended } = reduceTasks(state, action);
  const finished = ended.filter(t => !t.group_id);
  if (reduced.tasks === state.tasks && reduced.pending === state.pending) {
    return { state: reduced, finished, groupsFinished: [], asked: [], settled: [] };
  }
  const groups = noteGroups(state.groupsDone, reduced, action.type === 'delta');
  const next = { ...reduced, groupsDone: groups.done };
  // Which calls wait now, against which waited before this step.
  const pending = new Set<string>();
  const asked: IAskedCall[] = [];
  for (const { task } of next.tasks.values()) {
    if (taskEnded(task)) {
      continue;
    }
    for (const call of task.pending_approvals ?? []) {
      const key = approvalKey(task.id, call.call_id);
      pending.add(key);
      if (!state.pending.has(key)) {
        asked.push({ task, call });
      }
    }
  }
  const settled = [...state.pending].filter(key => !pending.has(key));
  return {
    state: { ...next, pending },
    finished,
    groupsFinished: groups.finished,
    asked,
    settled
  };
}

/**
 * Groups whose every task has ended now and had not before. A group first seen already done
 * in a snapshot (a page reload) is not announced; in a delta (made and done within one
 * coalescing window) it is.
 */
function noteGroups(
  before: ReadonlyMap<string, boolean>,
  state: IState,
  inDelta: boolean
): { done: Map<string, boolean>; finished: IGroupSummary[] } {
  const done = new Map<string, boolean>();
  const finished: IGroupSummary[] = [];
  if (state.connection !== 'connected') {
    return { done, finished };
  }
  for (const group of groupsOf(state.totals).values()) {
    const now = group.total > 0 && group.done >= group.total;
    const was = before.get(group.id);
    if (now && (was === false || (was === undefined && inDelta))) {
      finished.push(group);
    }
    done.set(group.id, now);
  }
  return { done, finished };
}

function reduceTasks(state: IState, action: Action): { state: IState; finished: ITask[] } {
  switch (action.type) {
    case 'connecting':
      // A new comm numbers its messages from 1 again; keep the tasks so that a
      // re-sync after a dropped connection still notices tasks that finished.
      return unchanged({ ...state, connection: 'connecting', error: null, seq: 0 });
    case 'snapshot':
      return applySnapshot(state, action.msg, action.now);
    case 'delta':
      return applyDelta(state, action.msg, action.now);
    case 'unavailable':
      return unchanged({ ...initialState('unavailable') });
    case 'error':
      return unchanged({ ...state, connection: 'error', waiting: false, error: action.error });
    case 'waiting':
      return unchanged(
        state.connection === 'connected' ? state : { ...state, waiting: action.waiting }
      );
    case 'reset':
      return unchanged(initialState(action.connection));
  }
}

function unchanged(state: IState): { state: IState; finished: ITask[] } {
  return { state, finished: [] };
}

function applySnapshot(
  state: IState,
  msg: ISnapshotMsg,
  now: number
): { state: IState; finished: ITask[] } {
  if (msg.seq <= state.seq) {
    return unchanged(state);
  }
  // The snapshot is the whole truth: tasks it does not list are gone.
  const tasks = new Map<string, ITaskEntry>();
  const seen = new Set(state.seenTerminal);
  const finished: ITask[] = [];
  for (const task of msg.tasks) {
    const prev = state.tasks.get(task.id);
    const entry = newer(prev, task, now);
    tasks.set(task.id, entry);
    // Unknown tasks already finished before we connected (page reload): no notification.
    if (prev !== undefined) {
      noteFinished(prev, entry.task, seen, finished);
    } else if (taskEnded(entry.task)) {
      seen.add(task.id);
    }
  }
  return {
    state: {
      connection: 'connected',
      waiting: false,
      error: null,
      seq: msg.seq,
      tasks,
      totals: msg.totals,
      seenTerminal: seen,
      history: msg.history ?? [],
      ops: new Set(Array.isArray(msg.ops) ? msg.ops : FIRST_OPS),
      pending: state.pending,
      groupsDone: state.groupsDone
    },
    finished
  };
}

function applyDelta(
  state: IState,
  msg: IDeltaMsg,
  now: number
): { state: IState; finished: ITask[] } {
  if (msg.seq <= state.seq || state.connection !== 'connected') {
    // Stale, duplicate, or before the snapshot (which will carry the same facts).
    return unchanged(state);
  }
  const tasks = new Map(state.tasks);
  const seen = new Set(state.seenTerminal);
  const finished: ITask[] = [];
  for (const task of msg.tasks) {
    const prev = tasks.get(task.id);
    const entry = newer(prev, task, now);
    tasks.set(task.id, entry);
    // A task created and finished within one coalescing window arrives terminal: notify.
    noteFinished(prev, entry.task, seen, finished);
  }
  for (const id of msg.removed ?? []) {
    tasks.delete(id);
  }
  return {
    state: { ...state, seq: msg.seq, tasks, totals: msg.totals, seenTerminal: seen },
    finished
  };
}

/** Keep whichever of the known entry and the incoming task has the higher version. */
function newer(prev: ITaskEntry | undefined, task: ITask, now: number): ITaskEntry {
  if (prev !== undefined && prev.task.version > task.version) {
    return prev;
  }
  return { task, receivedAt: now };
}

function noteFinished(
  prev: ITaskEntry | undefined,
  task: ITask,
  seen: Set<string>,
  finished: ITask[]
): void {
  if (!taskEnded(task) || seen.has(task.id)) {
    return;
  }
  seen.add(task.id);
  if (prev === undefined || !taskEnded(prev.task)) {
    finished.push(task);
  }
}

// ---------------------------------------------------------------- derived views

export interface ICounts {
  running: number;
  queued: number;
  /** Waiting for a person to approve or deny a tool call. */
  awaiting: number;
  /** Live in a state this frontend does not know by name (a newer kernel's). */
  otherLive: number;
  finished: number;
  total: number;
}

export function counts(state: IState): ICounts {
  const c: ICounts = { running: 0, queued: 0, awaiting: 0, otherLive: 0, finished: 0, total: 0 };
  for (const { task } of state.tasks.values()) {
    c.total += 1;
    if (taskEnded(task)) {
      c.finished += 1;
    } else if (task.state === 'running') {
      c.running += 1;
    } else if (task.state === 'queued') {
      c.queued += 1;
    } else if (task.state === 'awaiting_approval') {
      c.awaiting += 1;
    } else {
      c.otherLive += 1;
    }
  }
  return c;
}

/**
 * The status-bar text: "2 running · 1 queued", then " · 1 awaiting approval" and
 * " · 1 other live" (a newer kernel's state) when there are any.
 */
export function statusText(c: ICounts): string {
  const awaiting = c.awaiting > 0 ? ` · ${c.awaiting} awaiting approval` : '';
  const other = c.otherLive > 0 ? ` · ${c.otherLive} other live` : '';
  return `${c.running} running · ${c.queued} queued${awaiting}${other}`;
}

/**
 * Display order: awaiting approval, running, other live states, then finished; newest first
 * within each.
 */
export function orderedTasks(state: IState): ITaskEntry[] {
  const rank = (t: ITask) => stateRank(t.state, t.terminal);
  return [...state.tasks.values()].sort(
    (a, b) =>
      rank(a.task) - rank(b.task) ||
      b.task.created_at - a.task.created_at ||
      (a.task.id < b.task.id ? -1 : a.task.id > b.task.id ? 1 : 0)
  );
}

/** Whether a task's elapsed time moves (started, not ended): it ticks between deltas. */
export function ticks(task: ITask): boolean {
  return (task.state === 'running' || task.state === 'awaiting_approval') && !taskEnded(task);
}

/** Elapsed seconds now: a started task keeps ticking between deltas. */
export function elapsedNow(entry: ITaskEntry, now: number): number {
  const { task } = entry;
  if (!ticks(task)) {
    return task.elapsed_s;
  }
  return task.elapsed_s + Math.max(0, now - entry.receivedAt) / 1000;
}
