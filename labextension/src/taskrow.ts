/**
 * One task in the panel's list: state, name, figures (time, tokens, calls, cost), output,
 * outcome, steering, the calls waiting for approval, and its actions. Owns its DOM and
 * updates it in place.
 */

import { Notification } from '@jupyterlab/apputils';

import { cancelTask, collectIntoVariable, IOutcome, steerTask } from './actions';
import { ApprovalsView } from './approvalview';
import { button, el, firstWords, setText } from './dom';
import { taskCost } from './figures';
import { KernelLink } from './link';
import { ITaskEntry, elapsedNow, formatElapsed, formatTokens, taskEnded } from './model';
import { ITask } from './protocol';

/** Output lines shown per task (the kernel sends a few more). */
const OUTPUT_LINES = 6;

/** One task in the list; owns its DOM and updates it in place. */
export class TaskRow {
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
    this._approvals = new ApprovalsView(_link, (pending, after) => this._run(pending, after));
    this.node.append(
      head,
      this._meta,
      this._approvals.node,
      this._activity,
      this._output,
      this._outcome,
      this._steering,
      form,
      actions,
      this._feedback
    );
  }

  /** Show this version of the task; `ops`: the requests its kernel answers. */
  update(entry: ITaskEntry, now: number, ops: ReadonlySet<string>): void {
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
    this._badge.textContent = task.state.replace(/_/g, ' ');
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
    this._approvals.update(task, ops.has('approve') && ops.has('deny'));
    this._steerForm.hidden = done;
    this._cancelButton.hidden = done;
  }

  updateElapsed(entry: ITaskEntry, now: number): void {
    const t = entry.task;
    const parts = [
      formatElapsed(elapsedNow(entry, now)),
      `${formatTokens(t.tokens)} tokens`,
      `${t.api_calls} call${t.api_calls === 1 ? '' : 's'}`,
      taskCost(t),
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
  private _approvals: ApprovalsView;
}

