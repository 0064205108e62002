/**
 * Approvals in the state logic, the task tree (agents, parent tasks, group cards) and the
 * panel's figures (cost, header, group line). Run: `npm test`.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { approvalNotice, argumentsText, groupApprovalNotice } from '../src/approvals';
import { costText, formatCost, groupLine, taskCost, totalsLine } from '../src/figures';
import {
  IReduction,
  IState,
  counts,
  elapsedNow,
  groupNotice,
  initialState,
  orderedTasks,
  reduce,
  statusText
} from '../src/model';
import { IPendingApproval, ITask, TaskState, Totals } from '../src/protocol';
import { isTerminal, learnStates } from '../src/states';
import {
  TreeNode,
  buildTree,
  flatten,
  groupFromTasks,
  waitingCalls,
  waitingText
} from '../src/tree';

function task(id: string, state: TaskState, version = 1, extra: Partial<ITask> = {}): ITask {
  return {
    id,
    name: null,
    state,
    model: 'm',
    goal: `goal of ${id}`,
    created_at: 1000 + Number(id.replace(/\D/g, '') || 0),
    elapsed_s: 2,
    api_calls: 1,
    prompt_tokens: 10,
    completion_tokens: 5,
    tokens: 15,
    recent_output: [],
    activity: '',
    last_tool: null,
    steering: [],
    error: null,
    summary: null,
    version,
    owner: null,
    parent_id: null,
    depth: 1,
    cost_usd: null,
    pending_approvals: [],
    group_id: null,
    ...extra
  };
}

function call(id: string, tool = 'run_shell', args = '{"command": "ls -la"}'): IPendingApproval {
  return { call_id: id, tool, arguments: args, reason: 'runs a shell command', requested_at: 1 };
}

function waiting(id: string, calls: string[], version = 1, extra: Partial<ITask> = {}): ITask {
  return task(id, 'awaiting_approval', version, {
    pending_approvals: calls.map(c => call(c)),
    ...extra
  });
}

/** Snapshot of `tasks` with `totals`, applied to a connecting state. */
function connected(tasks: ITask[], totals: Totals = {}): IState {
  return reduce(initialState('connecting'), {
    type: 'snapshot',
    msg: { type: 'snapshot', protocol: 1, seq: 1, tasks, totals },
    now: 0
  }).state;
}

function deltaOf(state: IState, seq: number, tasks: ITask[], totals: Totals = {}): IReduction {
  return reduce(state, { type: 'delta', msg: { type: 'delta', protocol: 1, seq, tasks, totals }, now: 0 });
}

const announced = (r: IReduction) => r.asked.map(a => `${a.task.id}/${a.call.call_id}`);

describe('awaiting approval', () => {
  it('is a live state this build knows, counted and shown first', () => {
    assert.equal(isTerminal('awaiting_approval'), false);
    learnStates({ live: ['queued'], terminal: ['awaiting_approval'] }); // never flips a known live one
    assert.equal(isTerminal('awaiting_approval'), false);
    const state = connected([task('t1', 'running'), waiting('t2', ['c1']), task('t3', 'queued')]);
    assert.deepEqual(counts(state), {
      running: 1,
      queued: 1,
      awaiting: 1,
      otherLive: 0,
      finished: 0,
      total: 3
    });
    assert.equal(statusText(counts(state)), '1 running · 1 queued · 1 awaiting approval');
    assert.deepEqual(orderedTasks(state).map(e => e.task.id), ['t2', 't1', 't3']);
    // the time it waits still passes on its clock
    assert.equal(elapsedNow({ task: waiting('t2', ['c1']), receivedAt: 0 }, 1000), 3);
  });

  it('announces each waiting call once, and settles it when decided', () => {
    const first = reduce(initialState('connecting'), {
      type: 'snapshot',
      msg: { type: 'snapshot', protocol: 1, seq: 1, tasks: [waiting('t1', ['c1'])], totals: {} },
      now: 0
    });
    // a page that connects while a call waits is told: the call still needs a person
    assert.deepEqual(announced(first), ['t1/c1']);
    const second = deltaOf(first.state, 2, [waiting('t1', ['c1', 'c2'], 2)]);
    assert.deepEqual(announced(second), ['t1/c2']);
    assert.deepEqual(second.settled, []);
    const decided = deltaOf(second.state, 3, [waiting('t1', ['c2'], 3)]);
    assert.deepEqual([announced(decided), decided.settled], [[], ['t1/c1']]);
    const running = deltaOf(decided.state, 4, [task('t1', 'running', 4)]);
    assert.deepEqual(running.settled, ['t1/c2']);
    // a re-sync after a dropped link does not announce the same call again
    const again = deltaOf(second.state, 3, [waiting('t1', ['c1', 'c2'], 3)]);
    const resync = reduce(reduce(again.state, { type: 'connecting' }).state, {
      type: 'snapshot',
      msg: { type: 'snapshot', protocol: 1, seq: 1, tasks: [waiting('t1', ['c1', 'c2'], 3)], totals: {} },
      now: 0
    });
    assert.deepEqual([announced(resync), resync.settled], [[], []]);
  });

  it('settles every waiting call when the kernel restarts, and ignores ended tasks', () => {
    const state = connected([waiting('t1', ['c1']), waiting('t2', ['c9'], 1, { state: 'cancelled', terminal: true })]);
    assert.deepEqual([...state.pending], ['t1/c1']);
    const reset = reduce(state, { type: 'reset', connection: 'connecting' });
    assert.deepEqual(reset.settled, ['t1/c1']);
    assert.equal(reset.state.pending.size, 0);
  });

  it('reads arguments as lines and says what waits in one notice', () => {
    assert.equal(argumentsText('{"command": "rm -rf build", "timeout": 5}'), 'command: rm -rf build\ntimeout: 5');
    assert.equal(argumentsText('not json'), 'not json');
    assert.equal(argumentsText('[1, 2]'), '[1, 2]');
    const notice = approvalNotice(
      task('t3', 'awaiting_approval', 1, { name: 'cleanup' }),
      call('c1', 'run_shell', JSON.stringify({ command: 'x'.repeat(500) }))
    );
    assert.match(notice, /^Hermes task cleanup \(t3\) asks to run run_shell \(call c1\): command: x+…/);
    assert.ok(notice.endsWith(' — runs a shell command'));
    assert.ok(notice.length < 200);
    const t = waiting('t4', ['c1']);
    const calls = [
      { task: t, call: call('c1') },
      { task: t, call: call('c2', 'write_file') },
      { task: t, call: call('c3') }
    ];
    assert.equal(
      groupApprovalNotice({ id: 'g1', name: 'regions' }, calls),
      'Hermes group regions (g1): 3 tool calls await approval (run_shell, write_file).'
    );
    assert.equal(
      groupApprovalNotice({ id: 'g2', name: null }, calls.slice(0, 1)),
      'Hermes group g2: 1 tool call awaits approval (run_shell).'
    );
  });
});

/** The tree as "depth:key" lines, group cards open. */
function shape(nodes: TreeNode[], open = true): string[] {
  return flatten(nodes, () => open).map(r => `${r.depth}:${r.node.key}`);
}

describe('tree', () => {
  it('puts an agent node first with its children under it, then the user\'s tasks', () => {
    const totals = { agents: [{ name: 'boss', owner: 'agent:boss', waiting: 2, children: 2, live: 0 }] };
    const state = connected(
      [
        task('t1', 'running'),
        task('t2', 'succeeded', 1, { owner: 'agent:boss' }),
        task('t3', 'succeeded', 1, { owner: 'agent:boss' }),
        task('t4', 'running', 1, { owner: 't3', parent_id: 't3', depth: 2 })
      ],
      totals
    );
    const tree = buildTree(state);
    assert.deepEqual(shape(tree), [
      '0:agent:agent:boss',
      '1:task:t3',
      '2:task:t4',
      '1:task:t2',
      '0:task:t1'
    ]);
    const agent = tree[0];
    assert.equal(agent.kind === 'agent' && agent.agent.waiting, 2);
    assert.equal(waitingText(2), '2 results waiting for the parent');
    assert.equal(waitingText(1), '1 result waiting for the parent');
    assert.equal(waitingText(0), '');
  });

  it('gives an agent seen only on its tasks a node, and a listed agent without tasks one too', () => {
    const totals = { agents: [{ name: 'idle', owner: 'agent:idle', waiting: 0, children: 0, live: 0 }] };
    const state = connected([task('t1', 'running', 1, { owner: 'agent:new' })], totals);
    const tree = buildTree(state);
    assert.deepEqual(shape(tree), ['0:agent:agent:idle', '0:agent:agent:new', '1:task:t1']);
    const made = tree[1];
    assert.deepEqual(made.kind === 'agent' && made.agent, {
      name: 'new',
      owner: 'agent:new',
      waiting: 0,
      children: 1,
      live: 1
    });
  });

  it('keeps a child whose parent is gone at the top level, and breaks loops', () => {
    const state = connected([
      task('t5', 'running', 1, { parent_id: 't1', owner: 't1', depth: 2 }),
      task('t6', 'running', 1, { parent_id: 't7' }),
      task('t7', 'running', 1, { parent_id: 't6' })
    ]);
    const rows = shape(buildTree(state));
    assert.ok(rows.includes('0:task:t5'));
    // t6 and t7 name each other: one of them goes to the top, the other under it
    assert.deepEqual(
      rows.filter(r => r !== '0:task:t5').map(r => r.slice(r.indexOf(':') + 1)).sort(),
      ['task:t6', 'task:t7']
    );
    assert.ok(rows.some(r => r.startsWith('0:task:t6') || r.startsWith('0:task:t7')));
  });

  it('shows the tasks of a fan-out group as one card where its first task would be', () => {
    const group = {
      id: 'g1',
      name: 'rows',
      goal: 'score {item}',
      total: 3,
      done: 2,
      failed: 1,
      counts: { awaiting_approval: 1 },
      tokens: 45,
      api_calls: 3,
      cost_usd: 0.0123,
      cost_unknown: 1
    };
    const state = connected(
      [
        task('t1', 'succeeded'),
        task('t2', 'succeeded', 1, { group_id: 'g1' }),
        task('t3', 'running', 1, { group_id: 'g1' }),
        task('t4', 'failed', 1, { group_id: 'g1' }),
        task('t5', 'queued')
      ],
      { groups: [group] }
    );
    const tree = buildTree(state);
    // running first: the group sits where its running task t3 would be
    assert.deepEqual(shape(tree, false), ['0:group:g1', '0:task:t5', '0:task:t1']);
    assert.deepEqual(shape(tree, true), [
      '0:group:g1',
      '1:task:t3',
      '1:task:t4',
      '1:task:t2',
      '0:task:t5',
      '0:task:t1'
    ]);
    const card = tree[0];
    assert.ok(card.kind === 'group');
    assert.equal(
      groupLine(card.group),
      '2/3 done · 1 failed · 1 awaiting approval · 45 tokens · $0.0123 (1 task without a price)'
    );
  });

  it('adds a group up from its tasks when the header does not list it', () => {
    const tasks = [
      task('t1', 'succeeded', 1, { group_id: 'g2', cost_usd: 0.5 }),
      task('t2', 'failed', 1, { group_id: 'g2', cost_usd: null }),
      task('t3', 'queued', 1, { group_id: 'g2', api_calls: 0, tokens: 0 }),
      waiting('t4', ['c1'], 1, { group_id: 'g2', api_calls: 0, tokens: 0 })
    ];
    assert.deepEqual(groupFromTasks('g2', tasks), {
      id: 'g2',
      name: null,
      goal: 'goal of t1',
      total: 4,
      done: 2,
      failed: 1,
      awaiting: 1,
      tokens: 30,
      cost_usd: 0.5,
      cost_unknown: 1
    });
    const tree = buildTree(connected(tasks));
    assert.deepEqual(shape(tree, false), ['0:group:g2']);
  });

  it('lists the calls a group card can approve at once', () => {
    const state = connected([
      waiting('t1', ['c1', 'c2'], 1, { group_id: 'g1' }),
      task('t2', 'running', 1, { group_id: 'g1' }),
      waiting('t3', ['c1'], 1, { group_id: 'g1' }),
      waiting('t4', ['c9'], 1, { group_id: 'g1', state: 'cancelled', terminal: true }),
      waiting('t5', ['c1'])
    ]);
    const card = buildTree(state).find(n => n.kind === 'group');
    assert.ok(card !== undefined);
    assert.deepEqual(
      waitingCalls(card).map(a => `${a.task.id}/${a.call.call_id}`).sort(),
      ['t1/c1', 't1/c2', 't3/c1']
    );
  });

  it('nests a group an agent started under that agent', () => {
    const state = connected([
      task('t1', 'running', 1, { owner: 'agent:a', group_id: 'g1' }),
      task('t2', 'running', 1, { owner: 'agent:a', group_id: 'g1' })
    ]);
    assert.deepEqual(shape(buildTree(state)), [
      '0:agent:agent:a',
      '1:group:g1@agent:agent:a',
      '2:task:t2',
      '2:task:t1'
    ]);
  });
});

describe('fan-out notifications', () => {
  const header = (id: string, done: number, failed = 0, total = 2) => ({
    groups: [{ id, name: 'rows', goal: 'g', total, done, failed, awaiting: 0, tokens: 0, cost_usd: null, cost_unknown: 0 }]
  });
  const member = (id: string, state: TaskState, version = 1) => task(id, state, version, { group_id: 'g1' });

  it('announces a group once, when its last task ends, and none of its tasks', () => {
    const start = connected([member('t1', 'running'), member('t2', 'running'), task('t3', 'running')], header('g1', 0));
    const one = deltaOf(start, 2, [member('t1', 'succeeded', 2), task('t3', 'failed', 2)], header('g1', 1));
    assert.deepEqual(one.finished.map(t => t.id), ['t3']); // a task of no group still notifies
    assert.deepEqual(one.groupsFinished, []);
    const two = deltaOf(one.state, 3, [member('t2', 'failed', 2)], header('g1', 2, 1));
    assert.deepEqual(two.finished, []);
    assert.deepEqual(two.groupsFinished.map(g => g.id), ['g1']);
    assert.deepEqual(groupNotice(two.groupsFinished[0]), {
      kind: 'error',
      message: 'Hermes group rows (g1): 2/2 done, 1 failed.'
    });
    const again = deltaOf(two.state, 4, [member('t2', 'failed', 3)], header('g1', 2, 1));
    assert.deepEqual(again.groupsFinished, []);
  });

  it('stays quiet about a group already done when the page connects; announces a quick one', () => {
    const done = reduce(initialState('connecting'), {
      type: 'snapshot',
      msg: { type: 'snapshot', protocol: 1, seq: 1, tasks: [member('t1', 'succeeded')], totals: header('g1', 1, 0, 1) },
      now: 0
    });
    assert.deepEqual(done.groupsFinished, []);
    const quick = deltaOf(done.state, 2, [task('t2', 'succeeded', 1, { group_id: 'g2' })], {
      groups: [...header('g1', 1, 0, 1).groups, { ...header('g2', 1, 0, 1).groups[0] }]
    });
    assert.deepEqual(quick.groupsFinished.map(g => g.id), ['g2']);
    assert.equal(groupNotice(quick.groupsFinished[0]).kind, 'success');
  });
});

describe('figures', () => {
  it('writes money and the header', () => {
    assert.equal(formatCost(0), '$0');
    assert.equal(formatCost(0.00123), '$0.0012');
    assert.equal(formatCost(0.0000165), '$0.000017');
    assert.equal(formatCost(0.0000001), '<$0.000001');
    assert.equal(formatCost(0.0123), '$0.0123');
    assert.equal(formatCost(12.345), '$12.35');
    assert.equal(taskCost(task('t1', 'running', 1, { cost_usd: 0.002 })), '$0.0020');
    assert.equal(taskCost(task('t1', 'running', 1, { cost_usd: 0.02 })), '$0.0200');
    assert.equal(taskCost(task('t1', 'running', 1, { cost_usd: null })), 'no price');
    assert.equal(taskCost(task('t1', 'queued', 1, { api_calls: 0 })), '');
    const old = task('t1', 'running');
    delete old.cost_usd; // an older kernel says nothing about cost
    assert.equal(taskCost(old), '');
    assert.equal(costText(0.25, 2), '$0.2500 (2 tasks without a price)');
    assert.equal(costText(null, 1), 'cost unknown (1 task without a price)');
    assert.equal(costText(null, 0), '');
    assert.equal(
      totalsLine({ total_tokens: 1234, api_calls: 3, cost_usd: 0.0123, cost_unknown: 2 }),
      '1.2k tokens · 3 calls · $0.0123 (2 tasks without a price)'
    );
    assert.equal(totalsLine({}), '');
  });
});
