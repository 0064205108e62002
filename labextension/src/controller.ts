/**
 * Keeps one KernelLink per kernel that an open notebook uses, and knows which
 * one belongs to the active notebook (what the panel and status bar show).
 *
 * Links of background notebooks stay open so their tasks still notify.
 */

import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Kernel } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { IApprovalChange, KernelLink } from './link';
import { IState, initialState } from './model';
import { ITask } from './protocol';
import { IGroupSummary } from './totals';

export interface IFinishedArgs {
  link: KernelLink;
  tasks: ITask[];
  /** Fan-out groups whose last task ended (their tasks are not in `tasks`). */
  groups: IGroupSummary[];
  /** Name of a notebook on that kernel, to say where the task ran. */
  notebook: string;
}

/** Tool calls of one kernel that started (`asked`) or stopped (`settled`) waiting. */
export interface IApprovalArgs extends IApprovalChange {
  link: KernelLink;
  notebook: string;
}

interface ILinkEntry {
  link: KernelLink;
  panels: Set<NotebookPanel>;
}

const NO_KERNEL = initialState('no-kernel');

export class HermesController {
  constructor(private readonly _tracker: INotebookTracker | null) {
    if (_tracker !== null) {
      _tracker.forEach(panel => this._watch(panel));
      _tracker.widgetAdded.connect((_, panel) => this._watch(panel));
      _tracker.currentChanged.connect(() => this._updateActive());
    }
    this._updateActive();
  }

  /** Emitted when the active link changes or its state does. */
  get activeChanged(): ISignal<this, IState> {
    return this._activeChanged;
  }

  /** Emitted when tasks of any watched kernel finish. */
  get finished(): ISignal<this, IFinishedArgs> {
    return this._finished;
  }

  /** Emitted when tool calls of any watched kernel start or stop waiting for approval. */
  get approvals(): ISignal<this, IApprovalArgs> {
    return this._approvals;
  }

  get activeLink(): KernelLink | null {
    return this._active;
  }

  get activeState(): IState {
    return this._active?.state ?? NO_KERNEL;
  }

  /** Title of the active notebook, or '' when there is none. */
  get activeNotebook(): string {
    return this._tracker?.currentWidget?.title.label ?? '';
  }

  private _watch(panel: NotebookPanel): void {
    const sc = panel.sessionContext;
    let current: Kernel.IKernelConnection | null = null;
    const update = () => {
      const kernel = panel.isDisposed ? null : (sc.session?.kernel ?? null);
      if (kernel === current) {
        return;
      }
      if (current !== null) {
        this._release(current, panel);
      }
      current = kernel;
      if (kernel !== null) {
        this._acquire(kernel, panel);
      }
      this._updateActive();
    };
    sc.kernelChanged.connect(update);
    sc.sessionChanged.connect(update);
    panel.disposed.connect(() => {
      sc.kernelChanged.disconnect(update);
      sc.sessionChanged.disconnect(update);
      update();
    });
    update();
  }

  private _acquire(kernel: Kernel.IKernelConnection, panel: NotebookPanel): void {
    let entry = this._links.get(kernel.id);
    if (entry === undefined || entry.link.isDisposed) {
      const link = new KernelLink(kernel);
      link.finished.connect((l, { tasks, groups }) =>
        this._finished.emit({ link: l, tasks, groups, notebook: this._notebookOf(l) })
      );
      link.approvals.connect((l, change) =>
        this._approvals.emit({ link: l, ...change, notebook: this._notebookOf(l) })
      );
      entry = { link, panels: new Set() };
      this._links.set(kernel.id, entry);
    }
    entry.panels.add(panel);
  }

  private _release(kernel: Kernel.IKernelConnection, panel: NotebookPanel): void {
    const entry = this._links.get(kernel.id);
    if (entry === undefined) {
      return;
    }
    entry.panels.delete(panel);
    if (entry.panels.size === 0) {
      this._links.delete(kernel.id);
      entry.link.dispose();
    }
  }

  private _notebookOf(link: KernelLink): string {
    const entry = this._links.get(link.kernel.id);
    const panel = entry ? [...entry.panels][0] : undefined;
    return panel?.title.label ?? '';
  }

  private _updateActive(): void {
    const panel = this._tracker?.currentWidget ?? null;
    const kernel = panel?.sessionContext.session?.kernel ?? null;
    const entry = kernel !== null ? this._links.get(kernel.id) : undefined;
    const link = entry?.link ?? null;
    if (link !== this._active) {
      this._active?.changed.disconnect(this._emitActive, this);
      this._active = link;
      link?.changed.connect(this._emitActive, this);
    }
    // Emit even when the link is the same: the notebook title may differ.
    this._emitActive();
  }

  private _emitActive(): void {
    this._activeChanged.emit(this.activeState);
  }

  private _links = new Map<string, ILinkEntry>();
  private _active: KernelLink | null = null;
  private _activeChanged = new Signal<this, IState>(this);
  private _finished = new Signal<this, IFinishedArgs>(this);
  private _approvals = new Signal<this, IApprovalArgs>(this);
}
