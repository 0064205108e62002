/**
 * One live link to one kernel's `hermes_jupyter` comm target.
 *
 * Opens the comm when the kernel is ready, feeds what arrives through the pure
 * reducer in model.ts, and follows the kernel's life: a restart or death empties
 * the list, a dropped websocket re-syncs from a fresh snapshot, and a kernel
 * without the target is retried after the user runs code that mentions hermes
 * (for example `%load_ext hermes_jupyter`).
 *
 * Subshells: where the kernel supports them (ipykernel ≥ 7: "kernel subshells" in the
 * kernel_info reply's `supported_features`), the link creates its own subshell and opens
 * and talks to the comm on it, so the panel connects and acts while a cell runs. Elsewhere
 * the comm waits behind the running cell, and the panel says so.
 */

import { CommsOverSubshells, Kernel, KernelMessage } from '@jupyterlab/services';
import { JSONObject } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { Action, IAskedCall, IState, initialState, reduce } from './model';
import { IGroupSummary } from './totals';
import {
  COMM_TARGET,
  ICloseData,
  IOpenData,
  IReplyMsg,
  IRequest,
  IRequestFields,
  ITask,
  PROTOCOL_VERSION,
  RequestOp,
  parseKernelMessage
} from './protocol';
import { learnStates } from './states';

/** How long a request may wait for its reply (a busy kernel without subshells queues comms). */
const REQUEST_TIMEOUT_MS = 60_000;

/** How long to wait for the kernel's supported features before opening without a subshell. */
const FEATURES_TIMEOUT_MS = 5_000;

/** While a cell that mentions hermes runs, retry the open this often (over a subshell only). */
const RETRY_WHILE_BUSY_MS = 1_000;

/** Code that may have made the comm target appear: worth another open attempt. */
const RETRY_TRIGGER = /hermes|delegate/i;

export class KernelLink implements IDisposable {
  constructor(readonly kernel: Kernel.IKernelConnection) {
    kernel.statusChanged.connect(this._onStatus, this);
    kernel.connectionStatusChanged.connect(this._onConnectionStatus, this);
    kernel.iopubMessage.connect(this._onIOPub, this);
    kernel.disposed.connect(() => this.dispose(), this);
    this._openWhenReady = true;
    this._maybeOpen();
  }

  /** Emitted after every state change. */
  get changed(): ISignal<this, IState> {
    return this._changed;
  }

  /**
   * Emitted with the tasks that just succeeded, failed or were cancelled (not those of a
   * fan-out group) and the groups whose last task just ended.
   */
  get finished(): ISignal<this, IFinished> {
    return this._finished;
  }

  /** Emitted when tool calls start or stop waiting for approval (keys: `approvalKey`). */
  get approvals(): ISignal<this, IApprovalChange> {
    return this._approvals;
  }

  get state(): IState {
    return this._state;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** Send one command; resolves with the kernel's reply (ok or a one-line error). */
  request(op: RequestOp, fields: IRequestFields = {}): Promise<IReplyMsg> {
    const comm = this._comm;
    if (comm === null || this._state.connection !== 'connected') {
      return Promise.reject(new Error('Not connected to hermes_jupyter in this kernel.'));
    }
    const id = `r${++this._requestCounter}`;
    const request: IRequest = { type: 'request', id, op, ...fields };
    return new Promise<IReplyMsg>((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new Error(`The kernel did not answer "${op}" within 60 s.`));
      }, REQUEST_TIMEOUT_MS);
      this._pending.set(id, { resolve, reject, timer });
      this._send(comm, 'comm_msg', request as unknown as JSONObject);
    });
  }

  /** The subshell the comm lives on, or null (main shell); undefined until known. */
  get subshellId(): string | null | undefined {
    return this._subshellId;
  }

  /** Try to open the comm again now (the panel's Reconnect button). */
  reconnect(): void {
    this._closeComm();
    this._openWhenReady = true;
    this._maybeOpen();
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._stopRetrying();
    this._closeComm();
    const subshell = this._subshellId;
    if (typeof subshell === 'string' && !this.kernel.isDisposed && this.kernel.supportsSubshells) {
      try {
        this.kernel.requestDeleteSubshell({ subshell_id: subshell }, true);
      } catch {
        // The kernel is going away: its subshells go with it.
      }
    }
    if (this._state.pending.size > 0) {
      // Nobody can decide these from here any more: their notifications go.
      this._approvals.emit({ asked: [], settled: [...this._state.pending] });
    }
    Signal.clearData(this);
  }

  // ------------------------------------------------------------------ opening

  private _maybeOpen(): void {
    const kernel = this.kernel;
    if (
      this._isDisposed ||
      !this._openWhenReady ||
      kernel.isDisposed ||
      kernel.connectionStatus !== 'connected' ||
      !['idle', 'busy'].includes(kernel.status)
    ) {
      return;
    }
    this._openWhenReady = false;
    const attempt = ++this._attempt;
    if (this._state.connection !== 'unavailable') {
      this._dispatch({ type: 'connecting' });
    }
    void this._subshell().then(
      subshell => this._open(attempt, subshell),
      () => this._open(attempt, null)
    );
  }

  private _open(attempt: number, subshell: string | null): void {
    const kernel = this.kernel;
    if (this._isDisposed || kernel.isDisposed || attempt !== this._attempt) {
      return; // a restart or a newer attempt took over meanwhile
    }
    this._closeComm();
    let comm: Kernel.IComm;
    try {
      comm = kernel.createComm(COMM_TARGET);
      // We route this comm ourselves: keep services from adding a subshell of its own.
      comm.commsOverSubshells = CommsOverSubshells.Disabled;
    } catch (err) {
      // Comms disabled on this connection, or the kernel went away meanwhile.
      this._dispatch({ type: 'error', error: String((err as Error).message ?? err) });
      return;
    }
    this._comm = comm;
    this._gotSnapshot = false;
    comm.onMsg = msg => this._onCommMsg(comm, msg);
    comm.onClose = msg => this._onCommClose(comm, msg);
    const data: IOpenData = { protocol: PROTOCOL_VERSION, client_id: clientId() };
    try {
      this._send(comm, 'comm_open', data as unknown as JSONObject);
    } catch (err) {
      this._comm = null;
      this._dispatch({ type: 'error', error: String((err as Error).message ?? err) });
      return;
    }
    if (subshell === null && kernel.status === 'busy' && this._state.connection !== 'connected') {
      this._dispatch({ type: 'waiting', waiting: true });
    }
  }

  /**
   * Our own subshell when the kernel has them ("kernel subshells" in `supported_features`),
   * else null. Created once per kernel process; a restart forgets it.
   */
  private async _subshell(): Promise<string | null> {
    if (this._subshellId !== undefined) {
      return this._subshellId;
    }
    const features = await this._supportedFeatures();
    if (features === null) {
      return null; // no answer yet (ask again at the next attempt)
    }
    if (!features.includes('kernel subshells')) {
      this._subshellId = null;
      return null;
    }
    const kernel = this.kernel;
    const future = kernel.supportsSubshells
      ? kernel.requestCreateSubshell({}, true)
      : // The kernel_info reply on the shell channel is stuck behind a busy cell, so
        // services does not know yet: the same request, built by hand.
        kernel.sendControlMessage(
          KernelMessage.createMessage({
            msgType: 'create_subshell_request',
            channel: 'control',
            username: kernel.username,
            session: kernel.clientId,
            content: {}
          }),
          true,
          true
        );
    const reply = (await future.done) as KernelMessage.ICreateSubshellReplyMsg;
    const content = reply.content as { status?: string; subshell_id?: unknown };
    const id =
      content.status !== 'error' && typeof content.subshell_id === 'string'
        ? content.subshell_id
        : null;
    this._subshellId = id;
    return id;
  }

  /**
   * The kernel's `supported_features`: from the kernel_info reply services already has, or
   * from one asked on the control channel (answered even while a cell runs); null if neither
   * came within FEATURES_TIMEOUT_MS.
   */
  private _supportedFeatures(): Promise<string[] | null> {
    const kernel = this.kernel;
    const features = (info: unknown): string[] => {
      const list = (info as { supported_features?: unknown } | undefined)?.supported_features;
      return Array.isArray(list) ? list.filter(f => typeof f === 'string') : [];
    };
    const fromShell = kernel.info.then(features);
    const infoRequest = KernelMessage.createMessage({
      msgType: 'kernel_info_request',
      channel: 'shell',
      username: kernel.username,
      session: kernel.clientId,
      content: {}
    });
    const fromControl = kernel
      .sendControlMessage(
        // kernel_info on the control channel (the protocol allows every shell request
        // there): the control thread answers even while the main shell runs a cell.
        { ...infoRequest, channel: 'control' } as unknown as KernelMessage.IControlMessage,
        true,
        true
      )
      .done.then(reply => features(reply.content));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<null>(resolve => {
      timer = setTimeout(() => resolve(null), FEATURES_TIMEOUT_MS);
    });
    const answer = Promise.race([fromShell, fromControl.catch(() => fromShell), timeout]);
    return answer.finally(() => clearTimeout(timer));
  }

  /** Send one comm message, on our subshell when we have one. */
  private _send(
    comm: Kernel.IComm,
    msgType: 'comm_open' | 'comm_msg' | 'comm_close',
    data: JSONObject
  ): void {
    const kernel = this.kernel;
    const subshellId = typeof this._subshellId === 'string' ? this._subshellId : null;
    const base = {
      channel: 'shell' as const,
      username: kernel.username,
      session: kernel.clientId,
      subshellId
    };
    const msg =
      msgType === 'comm_open'
        ? KernelMessage.createMessage({
            ...base,
            msgType,
            content: { comm_id: comm.commId, target_name: COMM_TARGET, data }
          })
        : msgType === 'comm_msg'
          ? KernelMessage.createMessage({ ...base, msgType, content: { comm_id: comm.commId, data } })
          : KernelMessage.createMessage({ ...base, msgType, content: { comm_id: comm.commId, data } });
    kernel.sendShellMessage(msg, false, true);
  }

  private _startRetrying(): void {
    if (this._retryTimer === null && typeof this._subshellId === 'string') {
      this._retryTimer = setInterval(() => {
        if (this._state.connection === 'unavailable' && this._comm === null) {
          this._openWhenReady = true;
          this._maybeOpen();
        }
      }, RETRY_WHILE_BUSY_MS);
    }
  }

  private _stopRetrying(): void {
    if (this._retryTimer !== null) {
      clearInterval(this._retryTimer);
      this._retryTimer = null;
    }
  }

  private _closeComm(): void {
    const comm = this._comm;
    this._comm = null;
    this._rejectPending('The link to the kernel closed.');
    if (comm !== null && !comm.isDisposed) {
      try {
        this._send(comm, 'comm_close', {});
      } catch {
        // The kernel is already gone; nothing to tell it.
      }
      comm.dispose();
    }
  }

  // ----------------------------------------------------------------- messages

  private _onCommMsg(comm: Kernel.IComm, msg: KernelMessage.ICommMsgMsg): void {
    if (comm !== this._comm) {
      return;
    }
    const parsed = parseKernelMessage(msg.content.data);
    if (parsed === null) {
      console.warn('hermes-jupyter: ignoring a malformed comm message', msg.content.data);
      return;
    }
    const now = Date.now();
    switch (parsed.type) {
      case 'snapshot':
        this._gotSnapshot = true;
        this._stopRetrying();
        learnStates(parsed.states);
        this._dispatch({ type: 'snapshot', msg: parsed, now });
        break;
      case 'delta':
        this._dispatch({ type: 'delta', msg: parsed, now });
        break;
      case 'reply': {
        const pending = this._pending.get(parsed.id);
        if (pending !== undefined) {
          this._pending.delete(parsed.id);
          clearTimeout(pending.timer);
          pending.resolve(parsed);
        }
        break;
      }
      case 'error':
        this._dispatch({ type: 'error', error: parsed.error });
        break;
    }
  }

  private _onCommClose(comm: Kernel.IComm, msg: KernelMessage.ICommCloseMsg): void {
    if (comm !== this._comm) {
      return;
    }
    this._comm = null;
    this._rejectPending('The kernel closed the Hermes link.');
    const data = (msg.content.data ?? {}) as ICloseData;
    if (data.reason === 'replaced') {
      // Another tab (a duplicate of this one) opened with our client id: take a new one.
      clientId(true);
      this._openWhenReady = true;
      this._maybeOpen();
    } else if (data.reason === 'protocol' || data.error) {
      this._dispatch({ type: 'error', error: data.error ?? 'The kernel refused the link.' });
    } else {
      // No target in this kernel (hermes_jupyter not loaded), or the kernel shut it down.
      this._dispatch({ type: 'unavailable' });
    }
  }

  private _onStatus(_: Kernel.IKernelConnection, status: KernelMessage.Status): void {
    if (['restarting', 'autorestarting', 'dead', 'terminating'].includes(status)) {
      // The kernel's comms and subshells died with it: forget every task.
      this._comm = null;
      this._subshellId = undefined;
      this._attempt += 1;
      this._stopRetrying();
      this._rejectPending('The kernel restarted.');
      this._dispatch({ type: 'reset', connection: status === 'dead' ? 'no-kernel' : 'connecting' });
      this._openWhenReady = status !== 'dead' && status !== 'terminating';
      return;
    }
    if (status === 'idle' && this._state.waiting && this._state.connection === 'connecting') {
      this._dispatch({ type: 'waiting', waiting: false });
    }
    this._maybeOpen();
  }

  private _onConnectionStatus(
    _: Kernel.IKernelConnection,
    status: Kernel.ConnectionStatus
  ): void {
    if (status !== 'connected') {
      return;
    }
    if (this._comm !== null && this._gotSnapshot) {
      // Messages may have been lost while the websocket was down: re-sync.
      this.request('snapshot').catch(() => undefined);
    } else {
      this._maybeOpen();
    }
  }

  private _onIOPub(_: Kernel.IKernelConnection, msg: KernelMessage.IIOPubMessage): void {
    if (this._state.connection !== 'unavailable') {
      return;
    }
    if (KernelMessage.isExecuteInputMsg(msg) && RETRY_TRIGGER.test(msg.content.code)) {
      this._retryAfter.add(msg.parent_header.msg_id as string);
      // Over a subshell, the target can be reached as soon as the cell registers it;
      // without one, every attempt would wait behind the cell anyway.
      this._startRetrying();
      if (this._subshellId === null) {
        this._dispatch({ type: 'waiting', waiting: true });
      }
    } else if (
      KernelMessage.isStatusMsg(msg) &&
      msg.content.execution_state === 'idle' &&
      this._retryAfter.delete(msg.parent_header.msg_id as string)
    ) {
      // That code has finished: the target may be registered now.
      this._retryAfter.clear();
      this._stopRetrying();
      this._openWhenReady = true;
      this._maybeOpen();
    }
  }

  private _dispatch(action: Action): void {
    const { state, finished, groupsFinished, asked, settled } = reduce(this._state, action);
    this._state = state;
    this._changed.emit(state);
    if (finished.length > 0 || groupsFinished.length > 0) {
      this._finished.emit({ tasks: finished, groups: groupsFinished });
    }
    if (asked.length > 0 || settled.length > 0) {
      this._approvals.emit({ asked, settled });
    }
  }

  private _rejectPending(reason: string): void {
    for (const { reject, timer } of this._pending.values()) {
      clearTimeout(timer);
      reject(new Error(reason));
    }
    this._pending.clear();
  }

  private _state: IState = initialState('connecting');
  private _comm: Kernel.IComm | null = null;
  private _subshellId: string | null | undefined = undefined;
  private _attempt = 0;
  private _retryTimer: ReturnType<typeof setInterval> | null = null;
  private _gotSnapshot = false;
  private _openWhenReady = false;
  private _isDisposed = false;
  private _requestCounter = 0;
  private _retryAfter = new Set<string>();
  private _pending = new Map<
    string,
    { resolve: (r: IReplyMsg) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> }
  >();
  private _changed = new Signal<this, IState>(this);
  private _finished = new Signal<this, IFinished>(this);
  private _approvals = new Signal<this, IApprovalChange>(this);
}

/** Tasks that just ended (none of a fan-out group), and groups whose last task just ended. */
export interface IFinished {
  tasks: ITask[];
  groups: IGroupSummary[];
}

export interface IApprovalChange {
  asked: IAskedCall[];
  settled: string[];
}

const CLIENT_ID_KEY = 'hermes-jupyter:client-id';
let fallbackClientId = '';

/**
 * A per-tab id, kept across page reloads (sessionStorage), so the kernel can drop
 * the comm a reloaded page left behind instead of feeding it forever.
 */
export function clientId(regenerate = false): string {
  const fresh = () => `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
  try {
    let id = regenerate ? null : window.sessionStorage.getItem(CLIENT_ID_KEY);
    if (!id) {
      id = fresh();
      window.sessionStorage.setItem(CLIENT_ID_KEY, id);
    }
    return id;
  } catch {
    if (!fallbackClientId || regenerate) {
      fallbackClientId = fresh();
    }
    return fallbackClientId;
  }
}
