// hermes_jupyter: a fan-out group's progress bar (anywidget view, plain ES module, no build).
//
// The model's one trait, `progress`, is the group's line of the session header: id, name,
// goal, total, done, failed, counts, tokens, api_calls, cost_usd, cost_unknown, ended. The
// kernel sends it again (one message) only when it changed, at most 10 times a second.

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "hj-group-progress";
  root.style.cssText = "display:flex;flex-wrap:wrap;align-items:center;gap:4px 10px;" +
    "font-family:var(--jp-ui-font-family,system-ui,sans-serif);" +
    "font-size:var(--jp-ui-font-size1,13px);color:var(--jp-ui-font-color1,#222)";
  const label = document.createElement("b");
  const bar = document.createElement("progress");
  bar.style.width = "14em";
  const text = document.createElement("span");
  text.className = "hj-group-progress-text";
  root.append(label, bar, text);
  el.append(root);

  const draw = () => {
    const p = model.get("progress") || {};
    label.textContent = p.name ? `${p.name} (${p.id})` : p.id || "group";
    bar.max = Math.max(1, p.total || 0);
    bar.value = p.done || 0;
    const parts = [`${fmt(p.done || 0)}/${fmt(p.total || 0)} done`];
    if (p.failed) parts.push(`${fmt(p.failed)} failed`);
    const asking = (p.counts || {}).awaiting_approval || 0;
    if (asking) parts.push(`${fmt(asking)} awaiting approval`);
    parts.push(`${fmt(p.tokens || 0)} tokens`);
    const none = p.cost_unknown ? ` (${plural(p.cost_unknown, "task")} without a price)` : "";
    if (p.cost_usd != null) parts.push(`$${Number(p.cost_usd).toFixed(4)}${none}`);
    else if (p.cost_unknown) parts.push(`cost unknown${none}`);
    if (p.ended) parts.push("ended");
    text.textContent = parts.join(" · ");
    root.dataset.done = String(p.done || 0);
    root.dataset.ended = String(Boolean(p.ended));
  };
  model.on("change:progress", draw);
  draw();
  return () => model.off("change:progress", draw);
}

function fmt(n) {
  return Number(n).toLocaleString("en-US");
}

function plural(n, word) {
  return `${fmt(n)} ${word}${n === 1 ? "" : "s"}`;
}

export default { render };
