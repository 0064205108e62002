// hermes_jupyter dashboard: the anywidget view (plain ES module, no build step).
//
// State: the model holds `_ids` (every task id, oldest first), `_totals` and one key per task,
// `task:<id>`, whose value is that task's card. The kernel sends one partial state update per
// refresher tick with only the keys that changed, so the model (and with it a saved notebook)
// is always whole. Views re-render only the cards whose version changed. Clicks go to the
// kernel as "action" custom messages; each gets a "reply" custom message.

const STATES = ["running", "queued", "succeeded", "failed", "cancelled", "interrupted"];
const LIVE = new Set(["running", "queued"]);

function render({ model, el }) {
  const view = new DashboardView(model, el);
  return () => view.dispose();
}

class DashboardView {
  constructor(model, el) {
    this.model = model;
    this.cards = new Map(); // id -> Card
    this.filter = "all";
    this.pending = new Map(); // request id -> what to do on success
    this.viewId = Math.random().toString(36).slice(2, 8);
    this.counter = 0;

    this.root = h("div", "hj-dash");
    this.header = this.buildHeader();
    this.empty = h("div", "hj-empty", "No tasks yet: delegate one and it appears here.");
    this.list = h("div", "hj-cards");
    this.root.append(this.header, this.empty, this.list);
    el.append(this.root);

    this.onChange = () => this.schedule();
    this.onMsg = (msg) => this.onReply(msg);
    model.on("change", this.onChange); // once per update, after all its keys are set
    model.on("msg:custom", this.onMsg);
    this.timer = setInterval(() => this.tickClock(), 1000);
    this.update();
    this.renderTotals();
  }

  dispose() {
    clearInterval(this.timer);
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
    this.select = h("select", "hj-filter");
    this.select.title = "Show tasks in this state";
    for (const value of ["all", ...STATES]) {
      const option = h("option", null, value === "all" ? "all states" : value);
      option.value = value;
      this.select.append(option);
    }
    this.select.addEventListener("change", () => {
      this.filter = this.select.value;
      for (const card of this.cards.values()) this.applyFilter(card);
    });
    this.cancelAll = h("button", "hj-btn hj-danger hj-cancel-all", "Cancel all");
    this.cancelAll.addEventListener("click", () =>
      this.request({ action: "cancel_all" }, this.headerReply));
    this.headerReply = h("span", "hj-reply");
    header.append(title, this.counts, this.usage, this.select, this.cancelAll, this.headerReply);
    return header;
  }

  renderTotals() {
    const totals = this.model.get("_totals") || {};
    const counts = totals.counts || {};
    this.counts.replaceChildren(
      ...STATES.filter((s) => s !== "interrupted" || counts[s]).map((s) => {
        const chip = h("span", "hj-count", `${counts[s] || 0} ${s}`);
        chip.dataset.state = s;
        return chip;
      }),
    );
    this.usage.textContent =
      `${fmt(totals.tokens || 0)} tokens · ${plural(totals.api_calls || 0, "call")}`;
    this.cancelAll.disabled = !(counts.running || counts.queued);
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
    this.empty.hidden = this.cards.size > 0;
  }

  insert(card) {
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
    const now = Date.now();
    for (const card of this.cards.values()) {
      if (card.data.state === "running") card.renderStats(now);
    }
  }

  request(fields, replyEl, onOk) {
    const card = this.cards.get(fields.task);
    if (card) card.pinned = true; // keep the answer in sight when the task ends
    const req = `${this.viewId}-${++this.counter}`;
    this.pending.set(req, onOk || null);
    show(replyEl, "…", null);
    this.model.send(Object.assign({ type: "action", req }, fields));
  }

  onReply(msg) {
    if (!msg || msg.type !== "reply") return;
    const target = msg.action === "cancel_all" ? this.headerReply
      : (this.cards.get(msg.task) || {}).reply;
    if (target) show(target, msg.text, msg.ok);
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
    this.actions = this.buildActions();
    this.reply = h("div", "hj-reply");
    this.body.append(this.goal, this.tail, this.steering, this.result, this.actions, this.reply);
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

    this.varInput = h("input", "hj-collect-var");
    this.varInput.value = `result_${id}`;
    this.varInput.title = "Notebook variable that receives the TaskResult";
    this.collectBtn = h("button", "hj-btn hj-collect", "Collect");
    this.collectBtn.addEventListener("click", () =>
      this.view.request({ action: "collect", task: id, variable: this.varInput.value.trim() },
        this.reply));

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

  set(data, now) {
    this.data = data;
    this.receivedAt = now;
    const live = LIVE.has(data.state);
    this.el.dataset.state = data.state;
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
    this.stale = true;
    if (this.el.open) this.renderBody();
  }

  renderStats(now) {
    const d = this.data;
    let seconds = d.elapsed_s;
    if (d.state === "running") seconds += Math.max(0, (now - this.receivedAt) / 1000);
    this.stats.textContent =
      `${d.model} · ${elapsed(seconds)} · ${plural(d.api_calls, "call")} · ${fmt(d.tokens)} tokens`;
  }

  renderBody() {
    const d = this.data;
    this.stale = false;
    this.goal.textContent = d.goal;
    this.tail.textContent = d.tail.join("\n");
    this.tail.hidden = d.tail.length === 0;
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
  return d.activity || "";
}

function firstLine(d) {
  const text = d.error ? `error: ${d.error}` : d.summary || "";
  return text.split("\n")[0];
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

export default { render };
