/**
 * State logic of the panel: snapshot / delta / restart → list, counts, and which
 * tasks newly finished (→ one notification each). Run: `npm test`.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  IState,
  counts,
  elapsedNow,
  finishNotice,
  formatElapsed,
  formatTokens,
  initialState,
  orderedTasks,
  reduce,
  historyLine,
  statusText,
  suggestedVariable
} from '../src/model';
import { IDeltaMsg, ISnapshotMsg, ITask, TaskState, parseKernelMessage } from '../src/protocol';

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
    ...extra
  };
}

function snapshot(seq: number, tasks: ITask[]): ISnapshotMsg {
  return { type: 'snapshot', protocol: 1, seq, tasks, totals: {} };
}

function delta(seq: number, tasks: ITask[], removed?: string[]): IDeltaMsg {
  return { type: 'delta', protocol: 1, seq, tasks, totals: { n: seq }, removed };
}

/** Run actions in order; return the final state and every finished id, in order. */
function run(...actions: Parameters<typeof reduce>[1][]): { state: IState; finished: string[] } {
  let state = initialState('connecting');
  const finished: string[] = [];
  for (const action of actions) {
    const r = reduce(state, action);
    state = r.state;
    finished.push(...r.finished.map(t => t.id));
  }
  return { state, finished };
}

const now = 50_000;

describe('snapshot', () => {
  it('replaces the list and connects', () => {
    const { state, finished } = run(
      { type: 'connecting' },
      { type: 'snapshot', msg: snapshot(1, [task('t1', 'running'), task('t2', 'queued')]), now }
    );
    assert.equal(state.connection, 'connected');
    assert.deepEqual([...state.tasks.keys()].sort(), ['t1', 't2']);
    assert.deepEqual(finished, []);
  });

  it('does not notify tasks that had finished before the page connected', () => {
    const { finished, state } = run(
      { type: 'connecting' },
      { type: 'snapshot', msg: snapshot(1, [task('t1', 'succeeded'), task('t2', 'failed')]), now },
      // The kernel may resend a finished task in a later delta: still no notification.
      { type: 'delta', msg: delta(2, [task('t1', 'succeeded', 2)]), now }
    );
    assert.deepEqual(finished, []);
    assert.equal(counts(state).finished, 2);
  });

  it('after a re-sync notices tasks that finished while the link was down', () => {
    const { finished } = run(
      { type: 'connecting' },
      { type: 'snapshot', msg: snapshot(1, [task('t1', 'running')]), now },
      { type: 'connecting' },
      { type: 'snapshot', msg: snapshot(1, [task('t1', 'cancelled', 3)]), now }
    );
    assert.deepEqual(finished, ['t1']);
  });

  it('drops tasks the kernel no longer lists', () => {
    const { state } = run(
      { type: 'connecting' },
      { type: 'snapshot', msg: snapshot(1, [task('t1', 'running'), task('t2', 'running')]), now },
      { type: 'snapshot', msg: snapshot(2, [task('t2', 'running')]), now }
    );
    assert.deepEqual([...state.tasks.keys()], ['t2']);
  });
});

describe('delta', () => {
  const connected = [
    { type: 'connecting' } as const,
    { type: 'snapshot', msg: snapshot(1, [task('t1', 'running'), task('t2', 'queued')]), now } as const
  ];

  it('updates changed tasks and adds new ones', () => {
    const { state } = run(
      ...connected,
      { type: 'delta', msg: delta(2, [task('t2', 'running', 2), task('t3', 'queued')]), now }
    );
    assert.equal(state.tasks.get('t2')?.task.state, 'running');
    assert.deepEqual(counts(state), { running: 2, queued: 1, awaiting: 0, otherLive: 0, finished: 0, total: 3 });
    assert.deepEqual(state.totals, { n: 2 });
  });

  it('reports each finished task exactly once', () => {
    const { finished } = run(
      ...connected,
      { type: 'delta', msg: delta(2, [task('t1', 'succeeded', 2)]), now },
      { type: 'delta', msg: delta(3, [task('t1', 'succeeded', 3), task('t2', 'failed', 2)]), now },
      { type: 'delta', msg: delta(4, [task('t2', 'failed', 3)]), now }
    );
    assert.deepEqual(finished, ['t1', 't2']);
  });

  it('notifies a task created and finished within one coalescing window', () => {
    const { finished } = run(...connected, {
      type: 'delta',
      msg: delta(2, [task('t9', 'succeeded', 4)]),
      now
    });
    assert.deepEqual(finished, ['t9']);
  });

  it('ignores stale or duplicate messages and older task versions', () => {
    const { state, finished } = run(
      ...connected,
      { type: 'delta', msg: delta(3, [task('t1', 'running', 5)]), now },
      { type: 'delta', msg: delta(3, [task('t1', 'succeeded', 6)]), now },
      { type: 'delta', msg: delta(4, [task('t1', 'queued', 4)]), now }
    );
    assert.equal(state.tasks.get('t1')?.task.version, 5);
    assert.equal(state.seq, 4);
    assert.deepEqual(finished, []);
  });

  it('is ignored before the snapshot arrives', () => {
    const { state } = run(
      { type: 'connecting' },
      { type: 'delta', msg: delta(1, [task('t1', 'running')]), now }
    );
    assert.equal(state.tasks.size, 0);
    assert.equal(state.connection, 'connecting');
  });

  it('removes tasks listed in `removed`', () => {
    const { state } = run(...connected, { type: 'delta', msg: delta(2, [], ['t1']), now });
    assert.deepEqual([...state.tasks.keys()], ['t2']);
  });
});

describe('kernel life cycle', () => {
  it('a restart shows an empty list, not stale tasks, and ids can repeat', () => {
    const { state, finished } = run(
      { type: 'connecting' },
      { type: 'snapshot', msg: snapshot(1, [task('t1', 'succeeded')]), now },
      { type: 'reset', connection: 'connecting' },
      { type: 'connecting' },
      { type: 'snapshot', msg: snapshot(1, [task('t1', 'running')]), now },
      { type: 'delta', msg: delta(2, [task('t1', 'succeeded', 2)]), now }
    );
    assert.equal(state.tasks.size, 1);
    // A new kernel's t1 is a new task: it notifies although the old t1 did too.
    assert.deepEqual(finished, ['t1']);
  });

  it('after a reset nothing is listed until the new snapshot', () => {
    const { state } = run(
      { type: 'connecting' },
      { type: 'snapshot', msg: snapshot(1, [task('t1', 'running')]), now },
      { type: 'reset', connection: 'connecting' }
    );
    assert.equal(state.tasks.size, 0);
    assert.deepEqual(counts(state), { running: 0, queued: 0, awaiting: 0, otherLive: 0, finished: 0, total: 0 });
    assert.equal(state.connection, 'connecting');
  });

  it('a kernel without the comm target is unavailable and empty', () => {
    const { state } = run({ type: 'connecting' }, { type: 'unavailable' });
    assert.equal(state.connection, 'unavailable');
    assert.equal(state.tasks.size, 0);
  });

  it('keeps the error text of a refused link', () => {
    const { state } = run({ type: 'connecting' }, { type: 'error', error: 'protocol 2?' });
    assert.equal(state.connection, 'error');
    assert.equal(state.error, 'protocol 2?');
  });
});

describe('derived views', () => {
  it('orders running, queued, then finished, newest first', () => {
    const { state } = run(
      { type: 'connecting' },
      {
        type: 'snapshot',
        msg: snapshot(1, [
          task('t1', 'succeeded'),
          task('t2', 'running'),
          task('t3', 'queued'),
          task('t4', 'running'),
          task('t5', 'failed')
        ]),
        now
      }
    );
    assert.deepEqual(
      orderedTasks(state).map(e => e.task.id),
      ['t4', 't2', 't3', 't5', 't1']
    );
  });

  it('status text', () => {
    assert.equal(
      statusText({ running: 2, queued: 1, awaiting: 0, otherLive: 0, finished: 4, total: 7 }),
      '2 running · 1 queued'
    );
    assert.equal(
      statusText({ running: 0, queued: 0, awaiting: 2, otherLive: 0, finished: 0, total: 2 }),
      '0 running · 0 queued · 2 awaiting approval'
    );
  });

  it('running tasks tick between deltas; finished ones do not', () => {
    const running = { task: task('t1', 'running', 1, { elapsed_s: 3 }), receivedAt: 10_000 };
    const done = { task: task('t2', 'succeeded', 1, { elapsed_s: 3 }), receivedAt: 10_000 };
    assert.equal(elapsedNow(running, 12_500), 5.5);
    assert.equal(elapsedNow(done, 12_500), 3);
  });

  it('formats elapsed time and tokens', () => {
    assert.equal(formatElapsed(4.25), '4.3s');
    assert.equal(formatElapsed(125), '2m 05s');
    assert.equal(formatElapsed(3725), '1h 02m');
    assert.equal(formatTokens(999), '999');
    assert.equal(formatTokens(1234), '1.2k');
    assert.equal(formatTokens(56_000), '56k');
    assert.equal(formatTokens(2_500_000), '2.5M');
  });

  it('finish notices say what happened', () => {
    assert.deepEqual(finishNotice(task('t1', 'succeeded', 1, { name: 'scan' })), {
      kind: 'success',
      message: 'Hermes task scan (t1) succeeded in 2.0s.'
    });
    const failed = finishNotice(task('t2', 'failed', 1, { error: 'rate limited\ntrace' }));
    assert.equal(failed.kind, 'error');
    assert.equal(failed.message, 'Hermes task t2 failed: rate limited');
    assert.equal(finishNotice(task('t3', 'cancelled')).kind, 'warning');
  });

  it('offers result_<id>, never the task name (which may hold the Task)', () => {
    // the quickstart: review = %delegate -n review ...
    assert.equal(suggestedVariable(task('t2', 'succeeded', 1, { name: 'review' })), 'result_t2');
    assert.equal(suggestedVariable(task('t1', 'succeeded', 1, { name: 'lit review' })), 'result_t1');
    assert.equal(suggestedVariable(task('t-7', 'succeeded')), 'result_t_7');
  });

  it('shows a state it does not know as live, and follows the kernel\'s terminal flag', () => {
    const { state, finished } = run(
      { type: 'snapshot', msg: snapshot(1, [task('t1', 'running'), task('t2', 'queued')]), now: 0 },
      {
        type: 'delta',
        msg: delta(2, [
          task('t1', 'paused', 2),
          task('t2', 'skipped', 2, { terminal: true })
        ]),
        now: 0
      }
    );
    assert.deepEqual(counts(state), {
      running: 0,
      queued: 0,
      awaiting: 0,
      otherLive: 1,
      finished: 1,
      total: 2
    });
    assert.deepEqual(finished, ['t2']);
    assert.deepEqual(orderedTasks(state).map(e => e.task.id), ['t1', 't2']);
    assert.equal(statusText(counts(state)), '0 running · 0 queued · 1 other live');
    const paused = { task: task('t1', 'paused', 1, { elapsed_s: 3 }), receivedAt: 0 };
    assert.equal(elapsedNow(paused, 1000), 3); // a state it does not know does not tick
  });

  it('keeps fields it does not know, ignores the protocol number, lists history', () => {
    const msg = parseKernelMessage({
      ...snapshot(1, [{ ...task('t1', 'running'), cost: 0.12, parent: 't0' } as ITask]),
      protocol: 7,
      ops: ['steer', 'approve'],
      history: [
        { session: 's1', id: 't1', state: 'interrupted', name: 'old', goal: 'g' },
        { bogus: true }
      ]
    });
    assert.ok(msg !== null && msg.type === 'snapshot');
    const { state } = run({ type: 'snapshot', msg: msg as ISnapshotMsg, now: 0 });
    assert.equal(state.connection, 'connected');
    assert.equal((state.tasks.get('t1')?.task as unknown as { cost: number }).cost, 0.12);
    assert.deepEqual([...state.ops], ['steer', 'approve']);
    assert.equal(state.history.length, 1);
    assert.equal(
      historyLine(state.history[0]),
      "t1 'old' · interrupted — its kernel stopped before it ended"
    );
    // a first-release kernel sends no ops: it answers the original four
    const old = run({ type: 'snapshot', msg: snapshot(1, []), now: 0 });
    assert.deepEqual([...old.state.ops], ['steer', 'cancel', 'collect', 'snapshot']);
  });

  it('says it waits for a busy kernel, until the snapshot comes', () => {
    const waiting = run({ type: 'connecting' }, { type: 'waiting', waiting: true });
    assert.equal(waiting.state.waiting, true);
    const connected = run(
      { type: 'connecting' },
      { type: 'waiting', waiting: true },
      { type: 'snapshot', msg: snapshot(1, []), now: 0 }
    );
    assert.equal(connected.state.waiting, false);
  });
});

describe('parseKernelMessage', () => {
  it('accepts the documented messages', () => {
    assert.equal(parseKernelMessage(snapshot(1, [task('t1', 'queued')]))?.type, 'snapshot');
    assert.equal(parseKernelMessage({ type: 'reply', seq: 3, id: 'r1', ok: true })?.type, 'reply');
    assert.equal(parseKernelMessage({ type: 'error', seq: 1, error: 'x' })?.type, 'error');
  });

  it('rejects malformed data', () => {
    assert.equal(parseKernelMessage(null), null);
    assert.equal(parseKernelMessage({ type: 'delta', seq: 1, tasks: [{ id: 1 }] }), null);
    assert.equal(parseKernelMessage({ type: 'nope', seq: 1 }), null);
    assert.equal(parseKernelMessage({ type: 'reply', id: 'r1', ok: true }), null);
  });

  it('defaults missing totals to an empty object', () => {
    const msg = parseKernelMessage({ type: 'delta', seq: 2, tasks: [] });
    assert.deepEqual(msg && 'totals' in msg ? msg.totals : null, {});
  });
});
