/**
 * The tool calls of one task that wait for a person: tool, call id, why, arguments, and
 * Approve / Deny (with an optional reason the model reads). Items are keyed by call id and
 * kept across updates, so a half-typed reason survives the deltas.
 */

import { approveCall, denyCall, IOutcome } from './actions';
import { argumentsText } from './approvals';
import { button, el, setText } from './dom';
import { KernelLink } from './link';
import { taskEnded } from './model';
import { IPendingApproval, ITask } from './protocol';

/** Runs a request and shows its reply line on the task's row. */
export type Runner = (pending: Promise<IOutcome | null>, after?: (ok: boolean) => void) => void;

export class ApprovalsView {
  readonly node = el('ul', 'jp-HermesTask-approvals');

  constructor(
    private readonly _link: KernelLink,
    private readonly _run: Runner
  ) {
    this.node.hidden = true;
    this.node.setAttribute('aria-label', 'Tool calls waiting for approval');
  }

  /** Show the task's waiting calls; `canDecide`: the kernel answers approve / deny. */
  update(task: ITask, canDecide: boolean): void {
    this._task = task;
    const calls = taskEnded(task) ? [] : (task.pending_approvals ?? []);
    const ids = new Set(calls.map(c => c.call_id));
    for (const [id, item] of this._items) {
      if (!ids.has(id)) {
        item.node.remove();
        this._items.delete(id);
      }
    }
    for (const call of calls) {
      let item = this._items.get(call.call_id);
      if (item === undefined) {
        item = this._item(call);
        this._items.set(call.call_id, item);
        this.node.append(item.node);
      }
      setText(item.reason, call.reason);
      setText(item.args, argumentsText(call.arguments));
      item.form.hidden = !canDecide;
      item.cannot.hidden = canDecide;
      setText(
        item.cannot,
        `This kernel takes no decisions from the panel: run %approve_task ${task.id} ` +
          `or %deny_task ${task.id} in a cell.`
      );
    }
    this.node.hidden = calls.length === 0;
  }

  private _item(call: IPendingApproval): IItem {
    const node = el('li', 'jp-HermesTask-approval');
    node.dataset.callId = call.call_id;
    const head = el('div', 'jp-HermesTask-approvalHead');
    head.append(
      el('span', 'jp-HermesTask-approvalLabel', 'Needs approval:'),
      el('span', 'jp-HermesTask-approvalTool', call.tool),
      el('span', 'jp-HermesTask-approvalCall', `call ${call.call_id}`)
    );
    const reason = el('div', 'jp-HermesTask-approvalReason');
    const args = el('pre', 'jp-HermesTask-approvalArgs');
    const form = el('form', 'jp-HermesTask-approvalForm');
    const input = document.createElement('input');
    input.type = 'text';
    input.className = 'jp-HermesTask-denyReason jp-mod-styled';
    input.placeholder = 'Reason to deny (optional)';
    input.setAttribute('aria-label', `Why ${call.tool} (${call.call_id}) is denied`);
    const buttons: HTMLButtonElement[] = [];
    const decide = (pending: () => Promise<IOutcome>) => {
      if (this._task === null) {
        return;
      }
      buttons.forEach(b => (b.disabled = true));
      this._run(pending(), ok => {
        if (!ok) {
          buttons.forEach(b => (b.disabled = false)); // still waiting: try again
        }
      });
    };
    const approve = button('Approve', 'jp-HermesTask-approve jp-mod-accept', () =>
      decide(() => approveCall(this._link, this._task as ITask, call.call_id))
    );
    const deny = button('Deny', 'jp-HermesTask-deny jp-mod-warn', () => {}, 'submit');
    buttons.push(approve, deny);
    form.addEventListener('submit', ev => {
      ev.preventDefault();
      decide(() => denyCall(this._link, this._task as ITask, call.call_id, input.value.trim()));
    });
    form.append(input, approve, deny);
    const cannot = el('div', 'jp-HermesTask-approvalCannot');
    node.append(head, reason, args, form, cannot);
    return { node, reason, args, form, cannot };
  }

  private _task: ITask | null = null;
  private _items = new Map<string, IItem>();
}

interface IItem {
  node: HTMLElement;
  reason: HTMLElement;
  args: HTMLElement;
  form: HTMLFormElement;
  cannot: HTMLElement;
}
