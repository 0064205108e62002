// hermes_jupyter dashboard, part two: the tree's rows that are not tasks (parent agents,
// fan-out groups) and the helpers. dashboard.py appends this file to dashboard.js: one module.

/** Put the rows of `_layout` in order: agent rows, task cards (indented by depth) and group
 * cards holding their tasks. Elements move into place; none is rebuilt. */
function arrange(view, rows) {
  const order = [];
  const keep = new Set();
  for (const row of rows) {
    let el;
    if (row.kind === "task") {
      const card = view.cards.get(row.id);
      if (!card) continue;
      el = card.el;
    } else {
      keep.add(row.id);
      let node = view.nodes.get(row.id);
      if (!node) {
        node = row.kind === "group" ? new GroupCard(view, row.id) : new AgentNode(row.id);
        view.nodes.set(row.id, node);
      }
      if (row.kind === "group") node.hold(row.tasks);
      el = node.el;
    }
    el.style.marginLeft = row.depth ? `${row.depth * 20}px` : "";
    el.dataset.depth = String(row.depth);
    order.push(el);
  }
  place(view.list, order);
  for (const [id, node] of view.nodes) {
    if (!keep.has(id)) {
      node.el.remove();
      view.nodes.delete(id);
    }
  }
  renderNodes(view, view.model.get("_totals") || {});
}

/** Make `order` the first children of `parent`, moving only what is out of place. */
function place(parent, order) {
  order.forEach((el, i) => {
    const here = parent.children[i];
    if (here !== el) parent.insertBefore(el, here || null);
  });
}

/** Agents' waiting counts and groups' progress, from the header. */
function renderNodes(view, totals) {
  for (const a of totals.agents || []) {
    const node = view.nodes.get(a.owner);
    if (node) node.render(a);
  }
  for (const g of totals.groups || []) {
    const node = view.nodes.get(g.id);
    if (node) node.render(g);
  }
}

/** A parent agent: its name, its children, "N results waiting for the parent". */
class AgentNode {
  constructor(owner) {
    this.el = h("div", "hj-agent");
    this.el.dataset.owner = owner;
    this.name = h("b", "hj-agent-name");
    this.stats = h("span", "hj-stats");
    this.waiting = h("span", "hj-waiting");
    this.el.append(h("span", "hj-badge hj-agent-badge", "agent"), this.name, this.stats,
      this.waiting);
    this.render({ name: owner.replace(/^agent:/, ""), waiting: 0, children: 0, live: 0 });
  }

  render(a) {
    this.name.textContent = a.name;
    this.stats.textContent = `${fmt(a.children)} started · ${fmt(a.live)} live`;
    this.waiting.textContent = a.waiting ? waitingText(a.waiting) : "";
    this.waiting.hidden = !a.waiting;
    this.el.dataset.waiting = String(a.waiting);
  }
}

/** One card for the tasks of a fan-out group: progress, failures, tokens, cost; opened, its
 * tasks' own cards (in item order). It opens by itself while one of them waits for approval. */
class GroupCard {
  constructor(view, id) {
    this.view = view;
    this.pinned = false;
    this.autoOpen = false;
    const el = (this.el = h("details", "hj-card hj-group-card"));
    el.dataset.groupId = id;
    const summary = h("summary", "hj-card-head");
    this.badge = h("span", "hj-badge", "group");
    this.title = h("span", "hj-title");
    this.title.append(h("code", null, id));
    this.bar = h("progress", "hj-progress");
    this.stats = h("span", "hj-stats");
    this.goal = h("span", "hj-activity");
    summary.append(this.badge, this.title, this.bar, this.stats, this.goal);
    // Every call the group's tasks wait on, approved at once (TaskGroup.approve).
    this.approveAll = h("button", "hj-btn hj-approve-all", "Approve all waiting");
    this.approveAll.hidden = true;
    this.reply = h("span", "hj-reply");
    this.approveAll.addEventListener("click", () =>
      view.request({ action: "approve_group", group: id }, this.reply));
    const actions = h("div", "hj-actions hj-group-actions");
    actions.append(this.approveAll, this.reply);
    this.tasks = h("div", "hj-group-tasks");
    el.append(summary, actions, this.tasks);
    el.addEventListener("toggle", () => {
      if (el.open !== this.autoOpen) this.pinned = true;
    });
  }

  hold(ids) {
    const order = [];
    for (const id of ids) {
      const card = this.view.cards.get(id);
      if (!card) continue;
      card.el.style.marginLeft = "";
      order.push(card.el);
    }
    place(this.tasks, order);
  }

  render(g) {
    this.title.replaceChildren(...(g.name ? [h("b", null, g.name), " "] : []),
      h("code", null, g.id));
    this.bar.max = Math.max(1, g.total);
    this.bar.value = g.done;
    const asking = (g.counts || {}).awaiting_approval || 0;
    this.stats.textContent = `${fmt(g.done)}/${fmt(g.total)} done` +
      (g.failed ? ` · ${fmt(g.failed)} failed` : "") +
      (asking ? ` · ${fmt(asking)} awaiting approval` : "") +
      ` · ${fmt(g.tokens)} tokens` + costText(g.cost_usd, g.cost_unknown);
    this.goal.textContent = g.goal;
    if (Boolean(asking) === this.approveAll.hidden) show(this.reply, "", null);
    this.approveAll.hidden = !asking;
    const state = g.done < g.total ? "running" : g.failed ? "failed" : "succeeded";
    this.el.dataset.state = this.badge.dataset.state = state;
    this.el.dataset.done = String(g.done);
    if (!this.pinned && asking && !this.el.open) {
      this.autoOpen = true;
      this.el.open = true;
    }
  }
}

// ---- helpers ------------------------------------------------------------------------------

function h(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function show(el, text, ok) {
  el.textContent = text;
  if (ok === null) delete el.dataset.ok;
  else el.dataset.ok = String(ok);
}

function activityText(d) {
  if (d.state === "queued") return "waiting for a free slot";
  const pending = d.pending || [];
  if (pending.length) {
    const more = pending.length > 1 ? ` (+${pending.length - 1} more)` : "";
    return `waits for your approval: ${pending[0].tool}${more}`;
  }
  return d.activity || "";
}

function firstLine(d) {
  const text = d.error ? `error: ${d.error}` : d.summary || "";
  return text.split("\n")[0];
}

/** A live task whose clock runs (every live state but the queue). */
function ticking(d) {
  return isLive(d) && d.state !== "queued";
}

/** `$0.0123`: USD with four decimals, as the text views print it. */
function money(usd) {
  return `$${Number(usd).toFixed(4)}`;
}

/** ` · $0.0123 (2 tasks without a price)`, or "" when nothing is known yet. */
function costText(usd, unknown) {
  const none = unknown ? ` (${plural(unknown, "task")} without a price)` : "";
  if (usd == null) return unknown ? ` · cost unknown${none}` : "";
  return ` · ${money(usd)}${none}`;
}

function waitingText(n) {
  return `${plural(n, "result")} waiting for the parent`;
}

function number(id) {
  const n = parseInt(String(id).slice(1), 10);
  return Number.isNaN(n) ? -1 : n;
}

/** `1 call`, `2 calls`: the rule of core/text.py `plural`, for every count shown. */
function plural(n, word) {
  return `${fmt(n)} ${word}${n === 1 ? "" : "s"}`;
}

function fmt(n) {
  return Number(n).toLocaleString("en-US");
}

function elapsed(seconds) {
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const m = Math.floor(seconds / 60);
  const s = Math.floor(seconds % 60);
  if (m < 60) return `${m}m ${String(s).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

