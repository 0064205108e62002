/**
 * Wire format of the `hermes_jupyter` comm (see docs/comm-protocol.md).
 *
 * Pure module: no JupyterLab imports, so it runs under node's test runner.
 */

/** Comm target registered in the kernel by `hermes_jupyter.comm.register`. */
export const COMM_TARGET = 'hermes_jupyter';

/**
 * Protocol version this frontend speaks. It stays 1: every change is additive, each side
 * ignores fields it does not know, and neither side closes on another number.
 */
export const PROTOCOL_VERSION = 1;

export { TaskState, isTerminal } from './states';
import { TaskState } from './states';

export interface ISteerRecord {
  message: string;
  queued_at: number;
  delivered_at: number | null;
  delivered: boolean;
}

/** One tool call waiting for a person's decision (`approve` / `deny` requests). */
export interface IPendingApproval {
  /** The call's id as the model named it; what `approve` / `deny` send as `call_id`. */
  call_id: string;
  tool: string;
  /** The call's arguments as JSON text, secrets redacted, long text clipped by the kernel. */
  arguments: string;
  /** Why the call needs approval. */
  reason: string;
  /** Epoch seconds. */
  requested_at: number;
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
  /** Whether `state` is an end (kernels from this release on send it; else known states decide). */
  terminal?: boolean;
  /** Who started it: null (the user), an agent's owner id "agent:NAME", or a task id. */
  owner?: string | null;
  /** The task that started this one (null for the user's and agents' tasks). */
  parent_id?: string | null;
  /** 1 for a task the user or an agent started, 2 for its child, ... */
  depth?: number;
  /** Known cost in USD, or null when its calls have no known price. */
  cost_usd?: number | null;
  /** Calls waiting for approval, oldest first (while `state` is `awaiting_approval`). */
  pending_approvals?: IPendingApproval[];
  /** The fan-out group (`Session.map`) it belongs to, like "g1"; null for the rest. */
  group_id?: string | null;
}

/** A task of an earlier kernel, from the live session's journal: read-only. */
export interface IHistoryTask {
  session: string;
  id: string;
  name: string | null;
  goal: string;
  model: string;
  state: TaskState;
  terminal?: boolean;
  created_at: number;
  ended_at: number | null;
  exit_reason: string | null;
  error: string | null;
  summary: string | null;
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
  /** Requests the kernel answers (absent: the four of the first release). */
  ops?: string[];
  /** Every task state the kernel has, live and terminal. */
  states?: { live?: string[]; terminal?: string[] };
  /** Tasks of earlier kernels (with a journal), oldest first. */
  history?: IHistoryTask[];
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
  /** Why a request was refused: `variable_exists`, `unknown_op`, `unknown_task`, ... */
  code?: string;
  /** With `variable_exists`: the taken name, and a free one the kernel suggests. */
  variable?: string;
  suggestion?: string;
}

/** A problem not tied to a request (for example a protocol mismatch before closing). */
export interface IErrorMsg {
  type: 'error';
  protocol: number;
  seq: number;
  error: string;
}

export type KernelMessage = ISnapshotMsg | IDeltaMsg | IReplyMsg | IErrorMsg;

export type RequestOp = 'steer' | 'cancel' | 'collect' | 'snapshot' | 'approve' | 'deny';

/** Fields a request may carry; a kernel ignores the ones it does not know. */
export interface IRequestFields {
  task?: string;
  message?: string;
  variable?: string;
  /** collect: `variable` is the offered name, so bind a free variant if it is taken. */
  free?: boolean;
  /** collect: the user confirmed replacing what `variable` holds. */
  overwrite?: boolean;
  /** approve / deny: the pending call decided (omitted: the oldest). */
  call_id?: string;
  /** deny: why, read by the model as the call's result. */
  reason?: string;
}

export interface IRequest extends IRequestFields {
  type: 'request';
  id: string;
  op: RequestOp;
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

function isHistoryTask(value: unknown): value is IHistoryTask {
  return (
    isObject(value) &&
    typeof value.id === 'string' &&
    typeof value.session === 'string' &&
    typeof value.state === 'string'
  );
}

/**
 * Validate a comm message's data; null for anything this frontend cannot use.
 *
 * Checks the envelope and the fields the state logic relies on; display fields
 * are trusted to be what the kernel documents. Fields it does not know are kept and
 * ignored, the `protocol` number is not checked (changes are additive), and a message
 * type it does not know is dropped (null).
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
        totals: isObject(data.totals) ? data.totals : {},
        ...(data.type === 'snapshot'
          ? { history: Array.isArray(data.history) ? data.history.filter(isHistoryTask) : [] }
          : {})
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
