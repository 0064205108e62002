/**
 * The panel's non-task rows: a parent agent (its children listed under it, and how many of
 * their results wait for its next turn) and a fan-out group card (progress, failures,
 * tokens, cost; expands to its tasks).
 */

import { approveAll } from './actions';
import { button, el, firstWords, setText } from './dom';
import { groupLine } from './figures';
import { KernelLink } from './link';
import { IAskedCall } from './model';
import { IAgentSummary, IGroupSummary, waitingText } from './tree';

export class AgentRow {
  readonly node = el('li', 'jp-HermesAgent');

  constructor() {
    const head = el('div', 'jp-HermesAgent-head');
    head.append(el('span', 'jp-HermesAgent-badge', 'agent'), this._name, this._children);
    this._waiting.title =
      'Results of ended children, delivered at the start of the parent’s next turn ' +
      '(a %%hermes cell, even an empty one, or agent.ask()).';
    this.node.append(head, this._waiting);
  }

  update(agent: IAgentSummary): void {
    this.node.dataset.owner = agent.owner;
    this.node.dataset.waiting = String(agent.waiting);
    setText(this._name, agent.name);
    const live = agent.live > 0 ? ` · ${agent.live} live` : '';
    setText(this._children, `${agent.children} child${agent.children === 1 ? '' : 'ren'}${live}`);
    const waiting = waitingText(agent.waiting);
    setText(this._waiting, waiting);
    this._waiting.hidden = waiting === '';
  }

  private _name = el('span', 'jp-HermesAgent-name');
  private _children = el('span', 'jp-HermesAgent-children');
  private _waiting = el('div', 'jp-HermesAgent-waiting');
}

export class GroupRow {
  readonly node = el('li', 'jp-HermesGroup');

  constructor(
    onToggle: () => void,
    private readonly _link: KernelLink
  ) {
    this._toggle = button('▸', 'jp-HermesGroup-toggle', onToggle);
    const head = el('div', 'jp-HermesGroup-head');
    head.append(this._toggle, el('span', 'jp-HermesGroup-badge', 'group'), this._name, this._id);
    this._approveAll = button('Approve all', 'jp-HermesGroup-approveAll jp-mod-accept', () =>
      this._approve()
    );
    this._feedback.hidden = true;
    this.node.append(head, this._progress, this._line, this._approveAll, this._feedback);
  }

  /**
   * Show the group; `calls`: the tool calls its tasks wait on, offered as one "Approve all"
   * when `canDecide` (the kernel answers `approve`).
   */
  update(
    group: IGroupSummary,
    expanded: boolean,
    calls: readonly IAskedCall[],
    canDecide: boolean
  ): void {
    this._calls = calls;
    this._approveAll.hidden = !canDecide || calls.length === 0;
    setText(this._approveAll, `Approve all ${calls.length} waiting`);
    this._approveAll.title = calls
      .map(({ task, call }) => `${task.id}: ${call.tool} (${call.call_id})`)
      .join('\n');
    this.node.dataset.groupId = group.id;
    this.node.dataset.done = String(group.done === group.total);
    this.node.dataset.awaiting = String(group.awaiting);
    this.node.setAttribute('aria-expanded', String(expanded));
    setText(this._toggle, expanded ? '▾' : '▸');
    this._toggle.title = expanded ? 'Hide the group’s tasks' : 'Show the group’s tasks';
    this._toggle.setAttribute('aria-label', this._toggle.title);
    setText(this._name, group.name ?? firstWords(group.goal));
    this._name.title = group.goal;
    setText(this._id, group.id);
    this._progress.max = Math.max(group.total, 1);
    this._progress.value = group.done;
    setText(this._line, groupLine(group));
  }

  private _approve(): void {
    const calls = this._calls;
    if (calls.length === 0) {
      return;
    }
    this._approveAll.disabled = true;
    void approveAll(this._link, calls).then(outcome => {
      this._approveAll.disabled = false;
      this._feedback.textContent = outcome.text;
      this._feedback.dataset.ok = String(outcome.ok);
      this._feedback.hidden = false;
    });
  }

  private _calls: readonly IAskedCall[] = [];
  private _approveAll: HTMLButtonElement;
  private _feedback = el('div', 'jp-HermesGroup-feedback');
  private _toggle: HTMLButtonElement;
  private _name = el('span', 'jp-HermesGroup-name');
  private _id = el('span', 'jp-HermesGroup-id');
  private _progress = el('progress', 'jp-HermesGroup-progress');
  private _line = el('div', 'jp-HermesGroup-line');
}
