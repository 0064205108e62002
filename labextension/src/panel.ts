/**
 * The "Hermes tasks" side panel: the live task tree of the active notebook's kernel.
 *
 * Plain DOM in a Lumino widget. The tree (tree.ts) is shown as one flat list, each row
 * indented by its depth; rows are keyed by node and updated in place, so a half-typed
 * steering message or denial reason keeps its text and focus while deltas arrive.
 */

import { LabIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { AgentRow, GroupRow } from './cards';
import { HermesController } from './controller';
import { el, button, placeRow } from './dom';
import { totalsLine } from './figures';
import { KernelLink } from './link';
import { IState, counts, historyLine, statusText, ticks } from './model';
import { IHistoryTask } from './protocol';
import { TaskRow } from './taskrow';
import { IRow, buildTree, flatten, waitingCalls } from './tree';

type Row = TaskRow | AgentRow | GroupRow;

export const PANEL_ID = 'hermes-jupyter-panel';

export class HermesPanel extends Widget {
  constructor(
    private readonly _controller: HermesController,
    icon: LabIcon
  ) {
    super();
    this.id = PANEL_ID;
    this.addClass('jp-HermesPanel');
    this.title.icon = icon;
    this.title.caption = 'Hermes tasks';

    const header = el('div', 'jp-HermesPanel-header');
    header.append(el('h2', 'jp-HermesPanel-title', 'Hermes tasks'));
    this._subtitle = el('div', 'jp-HermesPanel-subtitle');
    this._totals = el('div', 'jp-HermesPanel-totals');
    header.append(this._subtitle, this._totals);
    this._notice = el('div', 'jp-HermesPanel-notice');
    this._reconnect = button('Reconnect', 'jp-HermesPanel-reconnect', () =>
      this._controller.activeLink?.reconnect()
    );
    this._list = el('ul', 'jp-HermesPanel-list');
    this._list.setAttribute('role', 'tree');
    this._list.setAttribute('aria-label', 'Hermes tasks');
    this._history = el('details', 'jp-HermesPanel-history');
    this._historyTitle = el('summary', 'jp-HermesPanel-historyTitle');
    this._historyList = el('ul', 'jp-HermesPanel-historyList');
    this._history.append(this._historyTitle, this._historyList);
    this.node.append(header, this._notice, this._reconnect, this._list, this._history);

    _controller.activeChanged.connect(this._render, this);
    this._render();
  }

  dispose(): void {
    this._stopTicking();
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._render();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._stopTicking();
  }

  private _render(): void {
    const state = this._controller.activeState;
    const link = this._controller.activeLink;
    const c = counts(state);
    const notebook = this._controller.activeNotebook;
    this._subtitle.textContent =
      state.connection === 'connected'
        ? `${notebook} · ${statusText(c)}`
        : notebook || 'No active notebook';
    const figures = state.connection === 'connected' && c.total > 0 ? totalsLine(state.totals) : '';
    this._totals.textContent = figures;
    this._totals.hidden = figures === '';
    this._renderNotice(state, c.total);
    if (link !== this._rowsLink) {
      // Another kernel: rows (and their half-typed messages) belong to the old one.
      this._rows.forEach(row => row.node.remove());
      this._rows.clear();
      this._rowsLink = link;
    }
    this._renderHistory(link === null ? [] : state.history);
    if (link === null) {
      return;
    }
    this._renderRows(link, state);
    if ([...state.tasks.values()].some(e => ticks(e.task)) && this.isVisible) {
      this._startTicking();
    } else {
      this._stopTicking();
    }
  }

  private _renderNotice(state: IState, total: number): void {
    const text = noticeText(state, total);
    this._notice.textContent = text;
    this._notice.hidden = text === '';
    this._notice.dataset.connection = state.connection;
    this._reconnect.hidden = !['unavailable', 'error'].includes(state.connection);
  }

  private _renderRows(link: KernelLink, state: IState): void {
    const rows = flatten(buildTree(state), key => this._expanded.has(key));
    const now = Date.now();
    const alive = new Set(rows.map(r => r.node.key));
    for (const [key, row] of this._rows) {
      if (!alive.has(key)) {
        row.node.remove();
        this._rows.delete(key);
      }
    }
    let previous: HTMLElement | null = null;
    for (const item of rows) {
      const row = this._row(link, item, state, now);
      placeRow(row.node, item.depth, item.parent);
      // Move only rows that are out of place: moving a node drops focus inside it.
      const expected: ChildNode | null = previous ? previous.nextSibling : this._list.firstChild;
      if (expected !== row.node) {
        this._list.insertBefore(row.node, expected);
      }
      previous = row.node;
    }
  }

  /** The row of one tree node, made the first time, brought up to date. */
  private _row(link: KernelLink, item: IRow, state: IState, now: number): Row {
    const { node } = item;
    let row = this._rows.get(node.key);
    if (node.kind === 'task') {
      if (!(row instanceof TaskRow)) {
        row = new TaskRow(link);
      }
      row.update(node.entry, now, state.ops);
    } else if (node.kind === 'agent') {
      if (!(row instanceof AgentRow)) {
        row = new AgentRow();
      }
      row.update(node.agent);
    } else {
      if (!(row instanceof GroupRow)) {
        row = new GroupRow(() => this._toggle(node.key), link);
      }
      row.update(node.group, this._expanded.has(node.key), waitingCalls(node), state.ops.has('approve'));
    }
    const old = this._rows.get(node.key);
    if (old !== undefined && old !== row) {
      old.node.remove();
    }
    this._rows.set(node.key, row);
    return row;
  }

  /** Expand or fold a group card. */
  private _toggle(key: string): void {
    if (!this._expanded.delete(key)) {
      this._expanded.add(key);
    }
    this._render();
  }

  /** Tasks of earlier kernels (journal): read-only lines, interrupted ones marked. */
  private _renderHistory(history: readonly IHistoryTask[]): void {
    this._history.hidden = history.length === 0;
    const key = history.map(t => `${t.session}/${t.id}/${t.state}`).join(',');
    if (key === this._historyKey) {
      return;
    }
    this._historyKey = key;
    const interrupted = history.filter(t => t.state === 'interrupted').length;
    this._historyTitle.textContent =
      `Earlier kernels: ${history.length} task${history.length === 1 ? '' : 's'}` +
      (interrupted ? ` (${interrupted} interrupted)` : '');
    this._historyList.replaceChildren(
      ...[...history].reverse().map(t => {
        const li = el('li', 'jp-HermesPanel-historyItem', historyLine(t));
        li.dataset.state = t.state;
        li.title = t.goal;
        return li;
      })
    );
  }

  private _startTicking(): void {
    if (this._ticker === null) {
      this._ticker = setInterval(() => this._tick(), 1000);
    }
  }

  private _stopTicking(): void {
    if (this._ticker !== null) {
      clearInterval(this._ticker);
      this._ticker = null;
    }
  }

  private _tick(): void {
    const now = Date.now();
    const state = this._controller.activeState;
    for (const [key, row] of this._rows) {
      const entry = key.startsWith('task:') ? state.tasks.get(key.slice(5)) : undefined;
      if (entry !== undefined && row instanceof TaskRow) {
        row.updateElapsed(entry, now);
      }
    }
  }

  private _subtitle: HTMLElement;
  private _totals: HTMLElement;
  private _notice: HTMLElement;
  private _reconnect: HTMLButtonElement;
  private _list: HTMLElement;
  private _history: HTMLDetailsElement;
  private _historyTitle: HTMLElement;
  private _historyList: HTMLElement;
  private _historyKey = '';
  private _rows = new Map<string, Row>();
  /** Keys of the group cards shown open. */
  private _expanded = new Set<string>();
  private _rowsLink: KernelLink | null = null;
  private _ticker: ReturnType<typeof setInterval> | null = null;
}

function noticeText(state: IState, total: number): string {
  switch (state.connection) {
    case 'no-kernel':
      return 'Open a notebook with a running kernel to see its Hermes tasks.';
    case 'connecting':
      return state.waiting
        ? 'Waiting for the kernel: it is running a cell and cannot answer the panel until ' +
            'the cell ends (this kernel has no subshells; ipykernel 7 has them).'
        : 'Connecting to the kernel…';
    case 'unavailable':
      return state.waiting
        ? 'Waiting for the kernel: the running cell may load Hermes; the panel connects ' +
            'when it ends (this kernel has no subshells; ipykernel 7 has them).'
        : 'Hermes is not loaded in this kernel. Run %load_ext hermes_jupyter in a cell.';
    case 'error':
      return `Hermes link error: ${state.error ?? 'unknown'}`;
    case 'connected':
      return total === 0 ? 'No tasks yet. Start one with %delegate in a cell.' : '';
  }
}
