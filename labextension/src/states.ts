/**
 * The one place the frontend knows task states (docs/comm-protocol.md, "Growing the protocol").
 *
 * Pure module. The kernel is the source of truth: each task carries `terminal`, and each
 * snapshot lists `states` (from Python's `core.models.TaskState`), which `learnStates` adds
 * here. A state this frontend has never heard of, with no `terminal` flag, is shown as live:
 * a later kernel's new state must never look finished.
 */

/** States this build knows by name; any other string is a valid state too. */
export const KNOWN_STATES = [
  'queued',
  'running',
  'awaiting_approval',
  'succeeded',
  'failed',
  'cancelled',
  'interrupted'
] as const;

export type KnownState = (typeof KNOWN_STATES)[number];
/** A task state: one of the known ones, or one a newer kernel added. */
export type TaskState = KnownState | (string & {});

const terminalStates = new Set<string>(['succeeded', 'failed', 'cancelled', 'interrupted']);
const liveStates = new Set<string>(['queued', 'running', 'awaiting_approval']);

/** Add the states a kernel announced in its snapshot (`{live: [...], terminal: [...]}`). */
export function learnStates(states: unknown): void {
  if (typeof states !== 'object' || states === null) {
    return;
  }
  const { live, terminal } = states as { live?: unknown; terminal?: unknown };
  for (const [list, into, other] of [
    [terminal, terminalStates, liveStates],
    [live, liveStates, terminalStates]
  ] as const) {
    if (Array.isArray(list)) {
      for (const s of list) {
        if (typeof s === 'string' && !other.has(s)) {
          into.add(s);
        }
      }
    }
  }
}

/** Whether a task in this state has ended; `flag` is the task's own `terminal` field. */
export function isTerminal(state: TaskState, flag?: unknown): boolean {
  return typeof flag === 'boolean' ? flag : terminalStates.has(state);
}

/**
 * Display order: tasks waiting for a person's approval first (they need one), then running,
 * then other live states, then every ended one.
 */
export function stateRank(state: TaskState, flag?: unknown): number {
  if (isTerminal(state, flag)) {
    return 3;
  }
  return state === 'awaiting_approval' ? 0 : state === 'running' ? 1 : 2;
}
