/**
 * Wire format of the `hermes_jupyter` comm (see docs/comm-protocol.md).
 *
 * Pure module: no JupyterLab imports, so it runs under node's test runner.
 */

/** Comm target registered in the kernel by `hermes_jupyter.comm.register`. */
export const COMM_TARGET = 'hermes_jupyter';

/** Protocol version this frontend speaks; the kernel refuses any other. */
export const PROTOCOL_VERSION = 1;

export type TaskState =
  | 'queued'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'cancelled'
  | 'interrupted';

export const TERMINAL_STATES: ReadonlySet<TaskState> = new Set<TaskState>([
  'succeeded',
  'failed',
  'cancelled',
  'interrupted'
]);

export function isTerminal(state: TaskState): boolean {
  return TERMINAL_STATES.has(state);
}

export interface ISteerRecord {
  message: string;
  queued_at: number;
  delivered_at: number | null;
  delivered: boolean;
}

/** One task as `TaskStatus.to_dict(tail=N)` renders it (long strings clipped by the kernel). */
export interface ITask {
  id: string;
  name: string | null;
  state: TaskState;
  model: string;
  goal: string;
  created_at: number;
  elapsed_s: number;
  api_calls: number;
  prompt_tokens: number;
  completion_tokens: number;
  tokens: number;
  recent_output: string[];
  activity: string;
  last_tool: string | null;
  steering: ISteerRecord[];
  error: string | null;
  summary: string | null;
  version: number;
}

/** Session-wide counters, passed through from the kernel's refresher. */
export type Totals = Record<string, unknown>;

/** Sent once after the frontend opens the comm, and again on a `snapshot` request. */
export interface ISnapshotMsg {
  type: 'snapshot';
  protocol: number;
  seq: number;
  tasks: ITask[];
  totals: Totals;
}

/** Coalesced changes (≤ 10 per second); only tasks that changed since the last message. */
export interface IDeltaMsg {
  type: 'delta';
  protocol: number;
  seq: number;
  tasks: ITask[];
  removed?: string[];
  totals: Totals;
}

/** Answer to one request, matched by `id`. */
export interface IReplyMsg {
  type: 'reply';
  protocol: number;
  seq: number;
  id: string;
  ok: boolean;
  message?: string;
  error?: string;
}

/** A problem not tied to a request (for example a protocol mismatch before closing). */
export interface IErrorMsg {
  type: 'error';
  protocol: number;
  seq: number;
  error: string;
}

export type KernelMessage = ISnapshotMsg | IDeltaMsg | IReplyMsg | IErrorMsg;

export type RequestOp = 'steer' | 'cancel' | 'collect' | 'snapshot';

export interface IRequest {
  type: 'request';
  id: string;
  op: RequestOp;
  task?: string;
  message?: string;
  variable?: string;
}

/** Data of the frontend's `comm_open`. */
export interface IOpenData {
  protocol: number;
  client_id: string;
}

/** Data of a `comm_close` the kernel sends on purpose. */
export interface ICloseData {
  reason?: 'replaced' | 'protocol' | 'shutdown' | string;
  error?: string;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isTask(value: unknown): value is ITask {
  return (
    isObject(value) &&
    typeof value.id === 'string' &&
    typeof value.state === 'string' &&
    typeof value.version === 'number'
  );
}

/**
 * Validate a comm message's data; null for anything this frontend cannot use.
 *
 * Checks the envelope and the fields the state logic relies on; display fields
 * are trusted to be what the kernel documents.
 */
export function parseKernelMessage(data: unknown): KernelMessage | null {
  if (!isObject(data) || typeof data.seq !== 'number') {
    return null;
  }
  switch (data.type) {
    case 'snapshot':
    case 'delta':
      if (!Array.isArray(data.tasks) || !data.tasks.every(isTask)) {
        return null;
      }
      if (data.removed !== undefined && !Array.isArray(data.removed)) {
        return null;
      }
      return {
        ...(data as unknown as ISnapshotMsg | IDeltaMsg),
        totals: isObject(data.totals) ? data.totals : {}
      };
    case 'reply':
      return typeof data.id === 'string' && typeof data.ok === 'boolean'
        ? (data as unknown as IReplyMsg)
        : null;
    case 'error':
      return typeof data.error === 'string' ? (data as unknown as IErrorMsg) : null;
    default:
      return null;
  }
}
