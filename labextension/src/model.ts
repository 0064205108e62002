/**
 * Pure state logic of the Hermes panel: comm messages and kernel life-cycle
 * events in, task list, counts and "which tasks just finished" out.
 *
 * No JupyterLab or DOM imports: tested with node's test runner (test/model.test.ts).
 */

import {
  IDeltaMsg,
  ISnapshotMsg,
  ITask,
  TaskState,
  Totals,
  isTerminal
} from './protocol';

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
  readonly error: string | null;
  /** Highest message sequence number applied on the current comm. */
  readonly seq: number;
  readonly tasks: ReadonlyMap<string, ITaskEntry>;
  readonly totals: Totals;
  /** Ids of tasks already seen terminal: each one notifies at most once. */
  readonly seenTerminal: ReadonlySet<string>;
}

export type Action =
  | { type: 'connecting' }
  | { type: 'snapshot'; msg: ISnapshotMsg; now: number }
  | { type: 'delta'; msg: IDeltaMsg; now: number }
  | { type: 'unavailable' }
  | { type: 'error'; error: string }
  /** Kernel restarted, died, or the notebook switched kernels: forget every task. */
  | { type: 'reset'; connection: ConnectionState };

export interface IReduction {
  readonly state: IState;
  /** Tasks that reached a terminal state in this step and were running or queued before. */
  readonly finished: ITask[];
}

export function initialState(connection: ConnectionState = 'no-kernel'): IState {
  return {
    connection,
    error: null,
    seq: 0,
    tasks: new Map(),
    totals: {},
    seenTerminal: new Set()
  };
}

export function reduce(state: IState, action: Action): IReduction {
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
      return unchanged({ ...state, connection: 'error', error: action.error });
    case 'reset':
      return unchanged(initialState(action.connection));
  }
}

function unchanged(state: IState): IReduction {
  return { state, finished: [] };
}

function applySnapshot(state: IState, msg: ISnapshotMsg, now: number): IReduction {
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
    } else if (isTerminal(entry.task.state)) {
      seen.add(task.id);
    }
  }
  return {
    state: {
      connection: 'connected',
      error: null,
      seq: msg.seq,
      tasks,
      totals: msg.totals,
      seenTerminal: seen
    },
    finished
  };
}

function applyDelta(state: IState, msg: IDeltaMsg, now: number): IReduction {
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
  if (!isTerminal(task.state) || seen.has(task.id)) {
    return;
  }
  seen.add(task.id);
  if (prev === undefined || !isTerminal(prev.task.state)) {
    finished.push(task);
  }
}

// ---------------------------------------------------------------- derived views

export interface ICounts {
  running: number;
  queued: number;
  finished: number;
  total: number;
}

export function counts(state: IState): ICounts {
  const c: ICounts = { running: 0, queued: 0, finished: 0, total: 0 };
  for (const { task } of state.tasks.values()) {
    c.total += 1;
    if (task.state === 'running') {
      c.running += 1;
    } else if (task.state === 'queued') {
      c.queued += 1;
    } else {
      c.finished += 1;
    }
  }
  return c;
}

/** The status-bar text: "2 running · 1 queued". */
export function statusText(c: ICounts): string {
  return `${c.running} running · ${c.queued} queued`;
}

const STATE_RANK: Record<TaskState, number> = {
  running: 0,
  queued: 1,
  failed: 2,
  interrupted: 2,
  succeeded: 2,
  cancelled: 2
};

/** Display order: running, then queued, then finished; newest first within each. */
export function orderedTasks(state: IState): ITaskEntry[] {
  return [...state.tasks.values()].sort(
    (a, b) =>
      STATE_RANK[a.task.state] - STATE_RANK[b.task.state] ||
      b.task.created_at - a.task.created_at ||
      (a.task.id < b.task.id ? -1 : a.task.id > b.task.id ? 1 : 0)
  );
}

/** Elapsed seconds now: a running task keeps ticking between deltas. */
export function elapsedNow(entry: ITaskEntry, now: number): number {
  const { task } = entry;
  if (task.state !== 'running') {
    return task.elapsed_s;
  }
  return task.elapsed_s + Math.max(0, now - entry.receivedAt) / 1000;
}

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

const PY_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A Python variable name to offer when collecting a task: its name if usable, else `result_<id>`. */
export function suggestedVariable(task: ITask): string {
  const fromName = (task.name ?? '').trim().replace(/[^A-Za-z0-9_]+/g, '_');
  if (fromName && PY_IDENTIFIER.test(fromName)) {
    return fromName;
  }
  return `result_${task.id.replace(/[^A-Za-z0-9_]+/g, '_')}`;
}

function firstLine(text: string | null): string {
  return (text ?? '').split('\n', 1)[0].trim();
}
