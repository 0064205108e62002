// hermes_jupyter dashboard: the anywidget view (plain ES module, no build step).
//
// State: the model holds `_ids` (every task id, oldest first), `_totals` and one key per task,
// `task:<id>`, whose value is that task's card. The kernel sends one partial state update per
// refresher tick with only the keys that changed, so the model (and with it a saved notebook)
// is always whole. Views re-render only the cards whose version changed. Clicks go to the
// kernel as "action" custom messages; each gets a "reply" custom message. `_layout` (the rows of
// the tree: parent agents, tasks, fan-out groups; see cards.py `layout`) orders the cards;
// tree.js (appended to this module by dashboard.py) draws the agent and group rows.

// Task states come from Python (core.models.TaskState), never from a list here: the filter
// and the counts use the keys of `_totals.counts`, and a card is live unless its `terminal`
// flag says it ended, so a state added later (awaiting_approval) shows as live.
function statesOf(totals) {
  return Object.keys((totals && totals.counts) || {});
}

const RARE_STATES = ["interrupted", "awaiting_approval"];

function isLive(data) {
  return !data.terminal;
}

function render({ model, el }) {
  const view = new DashboardView(model, el);
  return () => view.dispose();
}

class DashboardView {
  constructor(model, el) {
    this.model = model;
    this.cards = new Map(); // id -> Card
    this.nodes = new Map(); // "agent:NAME" or "g1" -> AgentNode / GroupCard (tree.js)
    this.layoutSeen = undefined;
    this.filter = "all";
    this.pending = new Map(); // request id -> what to do on success
    this.viewId = Math.random().toString(36).slice(2, 8);
    this.counter = 0;

    this.root = h("div", "hj-dash");
    this.header = this.buildHeader();
    // Shown until the kernel answers our ping: a reopened notebook's saved state is a
    // snapshot, and its "running" tasks were running then, not now.
    this.snapshotNote = h("div", "hj-snapshot");
    this.snapshotNote.hidden = true;
    this.empty = h("div", "hj-empty", "No tasks yet: delegate one and it appears here.");
    this.list = h("div", "hj-cards");
    this.root.append(this.header, this.snapshotNote, this.empty, this.list);
    el.append(this.root);
    this.live = false;

    this.onChange = () => this.schedule();
    this.onMsg = (msg) => this.onReply(msg);
    model.on("change", this.onChange); // once per update, after all its keys are set
    model.on("msg:custom", this.onMsg);
    this.timer = setInterval(() => this.tickClock(), 1000);
    this.update();
    this.renderTotals();
    this.ping();
  }

  ping() {
    try {
      this.model.send({ type: "ping" });
    } catch (err) {
      // no kernel behind this model (a saved notebook opened without one)
    }
    // The kernel answers at once (over a subshell even while a cell runs); until it does,
    // say what this is. A kernel busy without subshells answers after its cell.
    this.pingTimer = setTimeout(() => { if (!this.live) this.showSnapshot(); }, 2000);
  }

  showSnapshot() {
    const at = (this.model.get("_totals") || {}).at;
    const when = at ? new Date(at * 1000).toLocaleString() : "an earlier run";
    this.snapshotNote.textContent = `Snapshot of ${when}, not live: this kernel does not ` +
      "have this dashboard (any more). Run %hermes_dashboard (or hj.dashboard()) for a live one.";
    this.snapshotNote.hidden = false;
    this.root.dataset.snapshot = "true";
    for (const card of this.cards.values()) card.renderStats(Date.now());
  }

  dispose() {
    clearInterval(this.timer);
    clearTimeout(this.pingTimer);
    this.model.off("change", this.onChange);
    this.model.off("msg:custom", this.onMsg);
  }

  schedule() {
    // coalesce bursts (a reload's state, then updates) into one render per animation frame
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.update();
      this.renderTotals();
    });
  }

  buildHeader() {
    const header = h("div", "hj-header");
    const title = h("span", "hj-title-main", "Hermes tasks");
    this.counts = h("span", "hj-counts");
    this.usage = h("span", "hj-usage");
    this.waiting = h("span", "hj-waiting");
    this.select = h("select", "hj-filter");
    this.select.title = "Show tasks in this state";
    this.stateKey = null;
    this.select.addEventListener("change", () => {
      this.filter = this.select.value;
      for (const card of this.cards.values()) this.applyFilter(card);
    });
    this.cancelAll = h("button", "hj-btn hj-danger hj-cancel-all", "Cancel all");
    this.cancelAll.addEventListener("click", () =>
      this.request({ action: "cancel_all" }, this.headerReply));
    this.headerReply = h("span", "hj-reply");
    header.append(title, this.counts, this.usage, this.waiting, this.select, this.cancelAll,
      this.headerReply);
    return header;
  }

  renderTotals() {
    const totals = this.model.get("_totals") || {};
    const counts = totals.counts || {};
    const states = statesOf(totals);
    if (states.join() !== this.stateKey) {
      this.stateKey = states.join();
      this.select.replaceChildren(...["all", ...states].map((value) => {
        const option = h("option", null, value === "all" ? "all states" : value);
        option.value = value;
        return option;
      }));
      this.select.value = states.includes(this.filter) ? this.filter : "all";
    }
    const live = this.liveCount();
    if (live !== this.lastLive) {
      if (this.lastLive !== undefined) show(this.headerReply, "", null); // "Asked 2 tasks to stop."
      this.lastLive = live;
    }
    this.counts.replaceChildren(
      // rare states (as in static_view.py) show only while some task is in them
      ...states.filter((s) => !RARE_STATES.includes(s) || counts[s]).map((s) => {
        const chip = h("span", "hj-count", `${counts[s] || 0} ${s.replace("_", " ")}`);
        chip.dataset.state = s;
        return chip;
      }),
    );
    this.usage.textContent =
      `${fmt(totals.tokens || 0)} tokens · ${plural(totals.api_calls || 0, "call")}` +
      costText(totals.cost_usd, totals.cost_unknown);
    const waiting = totals.waiting || 0;
    this.waiting.textContent = waiting ? waitingText(waiting) : "";
    this.waiting.hidden = !waiting;
    renderNodes(this, totals);
    this.cancelAll.disabled = this.liveCount() === 0;
  }

  liveCount() {
    let n = 0;
    for (const card of this.cards.values()) if (isLive(card.data)) n += 1;
    return n;
  }

  update() {
    const now = Date.now();
    for (const id of this.model.get("_ids") || []) {
      const data = this.model.get(`task:${id}`);
      if (!data) continue;
      let card = this.cards.get(id);
      if (!card) {
        card = new Card(this, data);
        this.cards.set(id, card);
        this.insert(card);
      } else if (card.data === data) {
        continue; // the model hands back the same object until an update replaces it
      }
      card.set(data, now);
      this.applyFilter(card);
    }
    const rows = this.model.get("_layout");
    if (rows && rows !== this.layoutSeen) {
      this.layoutSeen = rows;
      arrange(this, rows);
    }
    this.empty.hidden = this.cards.size > 0;
  }

  insert(card) {
    if (this.model.get("_layout")) return; // arrange() places it

    // newest first: before the first card with a smaller task number
    for (const node of this.list.children) {
      if (number(node.dataset.taskId) < card.num) {
        this.list.insertBefore(card.el, node);
        return;
      }
    }
    this.list.append(card.el);
  }

  applyFilter(card) {
    card.el.hidden = this.filter !== "all" && card.data.state !== this.filter;
  }

  tickClock() {
    if (!this.live) return; // a snapshot's clocks stand still
    const now = Date.now();
    for (const card of this.cards.values()) {
      if (ticking(card.data)) card.renderStats(now);
    }
  }

  request(fields, replyEl, onOk) {
    const card = this.cards.get(fields.task);
    const req = `${this.viewId}-${++this.counter}`;
    if (card) {
      card.pinned = true; // keep the answer in sight when the task ends
      card.askedIn[req] = card.data.state;
    }
    this.pending.set(req, onOk || null);
    show(replyEl, "…", null);
    this.model.send(Object.assign({ type: "action", req }, fields));
  }

  onReply(msg) {
    if (msg && msg.type === "pong") {
      this.live = true;
      this.snapshotNote.hidden = true;
      delete this.root.dataset.snapshot;
      return;
    }
    if (!msg || msg.type !== "reply") return;
    const card = this.cards.get(msg.task);
    const node = msg.group ? this.nodes.get(msg.group) : null; // a group card's button
    const target = msg.action === "cancel_all" ? this.headerReply : (node || card || {}).reply;
    if (target && card && msg.ok && card.askedIn[msg.req] !== undefined &&
        card.askedIn[msg.req] !== card.data.state) {
      // the task changed state before the answer came: "Cancelling t6…" is already stale
    } else if (target) show(target, msg.text, msg.ok);
    if (card && msg.code === "variable_exists") card.offerReplace(msg);
    if (this.pending.has(msg.req)) {
      const onOk = this.pending.get(msg.req);
      this.pending.delete(msg.req);
      if (msg.ok && onOk) onOk();
    }
  }
}

class Card {
  constructor(view, data) {
    this.view = view;
    this.data = data;
    this.num = number(data.id);
    this.pinned = false; // the user opened/closed it or clicked in it: we stop collapsing it
    this.receivedAt = Date.now();
    this.askedIn = {}; // request id -> the task's state when it was asked

    const el = (this.el = h("details", "hj-card"));
    el.dataset.taskId = data.id;
    const summary = h("summary", "hj-card-head");
    this.badge = h("span", "hj-badge");
    this.title = h("span", "hj-title");
    this.stats = h("span", "hj-stats");
    this.activity = h("span", "hj-activity");
    summary.append(this.badge, this.title, this.stats, this.activity);
    this.autoOpen = false;
    el.addEventListener("toggle", () => {
      // <details> reports our own changes too (later, as a task): only a mismatch is the user
      if (el.open !== this.autoOpen) this.pinned = true;
      if (el.open && this.stale) this.renderBody();
    });

    this.body = h("div", "hj-body");
    this.goal = h("div", "hj-goal");
    this.tail = h("pre", "hj-tail");
    this.steering = h("ul", "hj-steering");
    this.result = h("div", "hj-result");
    this.approvals = this.buildApprovals();
    this.actions = this.buildActions();
    this.reply = h("div", "hj-reply");
    this.body.append(this.goal, this.approvals, this.tail, this.steering, this.result,
      this.actions, this.reply);
    el.append(summary, this.body);
  }

  buildActions() {
    const id = this.data.id;
    const row = h("div", "hj-actions");
    this.steerInput = h("input", "hj-steer-input");
    this.steerInput.placeholder = "Steer: tell the subagent what to do…";
    this.steerBtn = h("button", "hj-btn hj-steer-send", "Send");
    const steer = () => {
      const message = this.steerInput.value.trim();
      if (!message) return show(this.reply, "Type a steering message first.", false);
      this.view.request({ action: "steer", task: id, message }, this.reply,
        () => { if (this.steerInput.value.trim() === message) this.steerInput.value = ""; });
    };
    this.steerBtn.addEventListener("click", steer);
    this.steerInput.addEventListener("keydown", (e) => { if (e.key === "Enter") steer(); });

    // The offered name: kept as is, the kernel takes a free variant if it is taken; a name
    // the user typed that holds something is replaced only after "Replace" is clicked.
    const offered = `result_${id}`;
    this.varInput = h("input", "hj-collect-var");
    this.varInput.value = offered;
    this.varInput.title = "Notebook variable that receives the TaskResult";
    this.collectBtn = h("button", "hj-btn hj-collect", "Collect");
    this.collectBtn.addEventListener("click", () => {
      const variable = this.varInput.value.trim();
      this.view.request({ action: "collect", task: id, variable, free: variable === offered },
        this.reply);
    });

    this.cancelBtn = h("button", "hj-btn hj-danger hj-cancel", "Cancel");
    this.cancelBtn.addEventListener("click", () =>
      this.view.request({ action: "cancel", task: id }, this.reply));

    const steerGroup = h("span", "hj-group");
    steerGroup.append(this.steerInput, this.steerBtn);
    const collectGroup = h("span", "hj-group");
    collectGroup.append(this.varInput, this.collectBtn);
    row.append(steerGroup, collectGroup, this.cancelBtn);
    return row;
  }

  /** Tool calls waiting for a person: each with Approve and Deny (the box: why, optional). */
  buildApprovals() {
    const box = h("div", "hj-approvals");
    this.pendingList = h("div", "hj-pending-list");
    this.pendingKey = "";
    this.denyReason = h("input", "hj-deny-reason");
    this.denyReason.placeholder = "Reason for a denial (optional): the model reads it";
    box.append(this.pendingList, this.denyReason);
    box.hidden = true;
    return box;
  }

  renderApprovals() {
    const pending = this.data.pending || [];
    this.approvals.hidden = pending.length === 0;
    const key = JSON.stringify(pending);
    if (key === this.pendingKey) return; // keep the buttons under the pointer as they are
    this.pendingKey = key;
    const id = this.data.id;
    this.pendingList.replaceChildren(...pending.map((p) => {
      const item = h("div", "hj-pending");
      item.dataset.callId = p.call_id;
      const head = h("div", "hj-pending-head");
      head.append(h("b", null, p.tool), " waits for your approval ",
        h("code", "hj-call-id", p.call_id), p.reason ? ` · ${p.reason}` : "");
      const args = h("pre", "hj-args", p.arguments);
      const approve = h("button", "hj-btn hj-approve", "Approve");
      approve.addEventListener("click", () => this.view.request(
        { action: "approve", task: id, call_id: p.call_id }, this.reply));
      const deny = h("button", "hj-btn hj-danger hj-deny", "Deny");
      deny.addEventListener("click", () => this.view.request(
        { action: "deny", task: id, call_id: p.call_id, reason: this.denyReason.value.trim() },
        this.reply, () => { this.denyReason.value = ""; }));
      const buttons = h("span", "hj-group");
      buttons.append(approve, deny);
      item.append(head, args, buttons);
      return item;
    }));
  }

  /** After "`x` already holds a …": a button to replace it, and the free name in the box. */
  offerReplace(msg) {
    const replace = h("button", "hj-btn hj-danger hj-replace", `Replace ${msg.variable}`);
    replace.addEventListener("click", () =>
      this.view.request({ action: "collect", task: this.data.id, variable: msg.variable,
        overwrite: true }, this.reply));
    this.reply.append(" ", replace);
    if (msg.suggestion) this.varInput.value = msg.suggestion;
  }

  set(data, now) {
    if (this.data.state !== data.state) {
      // reply lines ("Cancelling t6…", "…stored in result_t5 when it ends") described the
      // old state: they go with it
      show(this.reply, "", null);
    }
    this.data = data;
    this.receivedAt = now;
    const live = isLive(data);
    this.el.dataset.state = data.state;
    this.el.dataset.ended = String(!live); // open, an ended card's head hides its summary line
    this.badge.textContent = data.state;
    this.badge.dataset.state = data.state;
    this.title.replaceChildren(
      ...(data.name ? [h("b", null, data.name), " "] : []), h("code", null, data.id));
    this.activity.textContent = live ? activityText(data) : firstLine(data);
    this.activity.classList.toggle("hj-error-text", Boolean(data.error));
    this.renderStats(now);
    // live cards are open, finished ones collapse, unless the user took this card in hand
    if (!this.pinned && this.el.open !== live) {
      this.autoOpen = live;
      this.el.open = live;
    }
    this.steerInput.disabled = this.steerBtn.disabled = this.cancelBtn.disabled = !live;
    this.renderApprovals(); // even while closed: a waiting call must never hide
    if ((data.pending || []).length && !this.el.open) {
      this.autoOpen = true;
      this.el.open = true;
    }
    this.stale = true;
    if (this.el.open) this.renderBody();
  }

  renderStats(now) {
    const d = this.data;
    let seconds = d.elapsed_s;
    const snapshot = !this.view.live && this.view.root.dataset.snapshot === "true";
    if (ticking(d) && !snapshot) {
      seconds += Math.max(0, (now - this.receivedAt) / 1000);
    }
    const then = snapshot && isLive(d) ? " (then)" : "";
    const cost = d.cost_usd != null ? ` · ${money(d.cost_usd)}` : d.api_calls ? " · no price" : "";
    this.stats.textContent = `${d.model} · ${elapsed(seconds)}${then} · ` +
      `${plural(d.api_calls, "call")} · ${fmt(d.tokens)} tokens${cost}`;
  }

  renderBody() {
    const d = this.data;
    this.stale = false;
    this.goal.textContent = d.goal;
    // A finished card shows its summary (or error) once: not again as output lines.
    const ended = !isLive(d) && Boolean(d.summary || d.error);
    this.tail.textContent = ended ? "" : d.tail.join("\n");
    this.tail.hidden = ended || d.tail.length === 0;
    this.tail.scrollTop = this.tail.scrollHeight;
    this.steering.replaceChildren(...d.steering.map((s) => {
      const item = h("li", "hj-steer-item");
      item.dataset.delivered = String(s.delivered);
      const mark = h("span", "hj-steer-mark", s.delivered ? "✓ delivered" : "⏳ queued");
      item.append(mark, " ", s.message);
      return item;
    }));
    this.steering.hidden = d.steering.length === 0;
    this.result.replaceChildren();
    this.result.hidden = !(d.summary || d.error);
    if (d.error) this.result.append(h("div", "hj-error-text", `Error: ${d.error}`));
    if (d.summary) this.result.append(h("div", "hj-summary", d.summary));
  }
}

export default { render };
