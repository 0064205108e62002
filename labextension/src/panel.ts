/**
 * The "Hermes tasks" side panel: the live task list of the active notebook's kernel.
 *
 * Plain DOM in a Lumino widget. Rows are keyed by task id and updated in place,
 * so a half-typed steering message keeps its text and focus while deltas arrive.
 */

import { Notification } from '@jupyterlab/apputils';
import { LabIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { cancelTask, collectIntoVariable, IOutcome, steerTask } from './actions';
import { HermesController } from './controller';
import { KernelLink } from './link';
import {
  IState,
  ITaskEntry,
  counts,
  elapsedNow,
  formatElapsed,
  formatTokens,
  historyLine,
  orderedTasks,
  statusText,
  taskEnded
} from './model';
import { IHistoryTask, ITask } from './protocol';

/** Output lines shown per task (the kernel sends a few more). */
const OUTPUT_LINES = 6;

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
    header.append(this._subtitle);
    this._notice = el('div', 'jp-HermesPanel-notice');
    this._reconnect = button('Reconnect', 'jp-HermesPanel-reconnect', () =>
      this._controller.activeLink?.reconnect()
    );
    this._list = el('ul', 'jp-HermesPanel-list');
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
    if (c.running > 0 && this.isVisible) {
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
    const entries = orderedTasks(state);
    const now = Date.now();
    const alive = new Set(entries.map(e => e.task.id));
    for (const [id, row] of this._rows) {
      if (!alive.has(id)) {
        row.node.remove();
        this._rows.delete(id);
      }
    }
    let previous: HTMLElement | null = null;
    for (const entry of entries) {
      let row = this._rows.get(entry.task.id);
      if (row === undefined) {
        row = new TaskRow(link);
        this._rows.set(entry.task.id, row);
      }
      row.update(entry, now);
      // Move only rows that are out of place: moving a node drops focus inside it.
      const expected: ChildNode | null = previous ? previous.nextSibling : this._list.firstChild;
      if (expected !== row.node) {
        this._list.insertBefore(row.node, expected);
      }
      previous = row.node;
    }
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
    for (const [id, row] of this._rows) {
      const entry = state.tasks.get(id);
      if (entry !== undefined) {
        row.updateElapsed(entry, now);
      }
    }
  }

  private _subtitle: HTMLElement;
  private _notice: HTMLElement;
  private _reconnect: HTMLButtonElement;
  private _list: HTMLElement;
  private _history: HTMLDetailsElement;
  private _historyTitle: HTMLElement;
  private _historyList: HTMLElement;
  private _historyKey = '';
  private _rows = new Map<string, TaskRow>();
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

/** One task in the list; owns its DOM and updates it in place. */
class TaskRow {
  readonly node = el('li', 'jp-HermesTask');

  constructor(private readonly _link: KernelLink) {
    const head = el('div', 'jp-HermesTask-head');
    head.append(this._badge, this._name, this._id);
    const form = el('form', 'jp-HermesTask-steerForm');
    this._input.type = 'text';
    this._input.className = 'jp-HermesTask-steerInput jp-mod-styled';
    this._input.placeholder = 'Steer the agent…';
    this._input.setAttribute('aria-label', 'Steering message');
    form.append(this._input, this._steerButton);
    form.addEventListener('submit', ev => {
      ev.preventDefault();
      this._steer();
    });
    this._steerForm = form;
    const actions = el('div', 'jp-HermesTask-actions');
    actions.append(this._collectButton, this._cancelButton);
    this.node.append(
      head,
      this._meta,
      this._activity,
      this._output,
      this._outcome,
      this._steering,
      form,
      actions,
      this._feedback
    );
  }

  update(entry: ITaskEntry, now: number): void {
    const task = entry.task;
    if (this._task !== null && this._task.state !== task.state) {
      // "Cancelling t6…" or "…stored in result_t5 when it ends" described the old state.
      this._feedback.hidden = true;
      this._feedback.textContent = '';
    }
    this._task = task;
    const done = taskEnded(task);
    this.node.dataset.taskId = task.id;
    this.node.dataset.state = task.state;
    this._badge.textContent = task.state;
    this._badge.dataset.state = task.state;
    this._name.textContent = task.name ?? firstWords(task.goal);
    this._name.title = task.goal;
    this._id.textContent = task.id;
    this.updateElapsed(entry, now);
    this._activity.textContent = done ? '' : task.activity || (task.last_tool ? `tool: ${task.last_tool}` : '');
    this._activity.hidden = this._activity.textContent === '';
    // Once a task has its summary, that is the output worth reading.
    const tail = done && task.summary ? '' : task.recent_output.slice(-OUTPUT_LINES).join('\n');
    if (this._output.textContent !== tail) {
      this._output.textContent = tail;
      this._output.scrollTop = this._output.scrollHeight; // follow the newest line
    }
    this._output.hidden = tail === '';
    const outcome = task.error ? `Error: ${task.error}` : done ? (task.summary ?? '') : '';
    setText(this._outcome, outcome);
    this._outcome.hidden = outcome === '';
    this._outcome.dataset.kind = task.error ? 'error' : 'summary';
    this._renderSteering(task);
    this._steerForm.hidden = done;
    this._cancelButton.hidden = done;
  }

  updateElapsed(entry: ITaskEntry, now: number): void {
    const t = entry.task;
    const parts = [
      formatElapsed(elapsedNow(entry, now)),
      `${formatTokens(t.tokens)} tokens`,
      `${t.api_calls} call${t.api_calls === 1 ? '' : 's'}`,
      t.model
    ];
    setText(this._meta, parts.filter(Boolean).join(' · '));
  }

  private _renderSteering(task: ITask): void {
    const items = task.steering.map(s => {
      const li = el('li', 'jp-HermesTask-steer');
      li.dataset.delivered = String(s.delivered);
      li.textContent = `${s.delivered ? '✓' : '…'} ${s.message}`;
      li.title = s.delivered ? 'Delivered to the agent' : 'Queued: the agent sees it at its next step';
      return li;
    });
    const key = task.steering.map(s => `${s.delivered}:${s.message}`).join('\n');
    if (key !== this._steeringKey) {
      this._steeringKey = key;
      this._steering.replaceChildren(...items);
    }
    this._steering.hidden = items.length === 0;
  }

  private _steer(): void {
    const message = this._input.value.trim();
    if (!message || this._task === null) {
      return;
    }
    this._run(steerTask(this._link, this._task, message), ok => {
      if (ok) {
        this._input.value = '';
      }
    });
  }

  private _run(pending: Promise<IOutcome | null>, after?: (ok: boolean) => void): void {
    this._feedback.hidden = true;
    const askedIn = this._task?.state;
    void pending.then(outcome => {
      if (outcome === null) {
        return;
      }
      if (outcome.ok && this._task !== null && this._task.state !== askedIn) {
        // The state moved on before the reply came: the reply is already out of date.
        after?.(outcome.ok);
        return;
      }
      this._feedback.textContent = outcome.text;
      this._feedback.dataset.ok = String(outcome.ok);
      this._feedback.hidden = false;
      after?.(outcome.ok);
      if (!outcome.ok) {
        Notification.error(outcome.text, { autoClose: 8000 });
      }
    });
  }

  private _task: ITask | null = null;
  private _steeringKey = '';
  private _badge = el('span', 'jp-HermesTask-badge');
  private _name = el('span', 'jp-HermesTask-name');
  private _id = el('span', 'jp-HermesTask-id');
  private _meta = el('div', 'jp-HermesTask-meta');
  private _activity = el('div', 'jp-HermesTask-activity');
  private _output = el('pre', 'jp-HermesTask-output');
  private _outcome = el('div', 'jp-HermesTask-outcome');
  private _steering = el('ul', 'jp-HermesTask-steering');
  private _steerForm: HTMLFormElement;
  private _input = document.createElement('input');
  private _steerButton = button('Steer', 'jp-HermesTask-steerButton', () => this._steer(), 'submit');
  private _collectButton = button('Collect', 'jp-HermesTask-collect', () => {
    if (this._task !== null) {
      this._run(collectIntoVariable(this._link, this._task));
    }
  });
  private _cancelButton = button('Cancel', 'jp-HermesTask-cancel', () => {
    if (this._task !== null) {
      this._run(cancelTask(this._link, this._task));
    }
  });
  private _feedback = el('div', 'jp-HermesTask-feedback');
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function button(
  label: string,
  className: string,
  onClick: () => void,
  type: 'button' | 'submit' = 'button'
): HTMLButtonElement {
  const node = el('button', `jp-Button jp-mod-styled jp-mod-small ${className}`, label);
  node.type = type;
  if (type === 'button') {
    node.addEventListener('click', onClick);
  }
  return node;
}

/** Assign text only when it differs: avoids needless layout and keeps selections. */
function setText(node: HTMLElement, text: string): void {
  if (node.textContent !== text) {
    node.textContent = text;
  }
}

function firstWords(text: string, max = 60): string {
  const line = text.split('\n', 1)[0];
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
