// The dashboard's drawing of a job's DAG: a layered layout (a task's layer
// is one more than its deepest dependency's), tasks as boxes coloured by
// state, dependencies as curves from left to right. Plain SVG, no library.
'use strict';

(function () {
  const NS = 'http://www.w3.org/2000/svg';
  const W = 150, H = 44, GAP_X = 60, GAP_Y = 18, PAD = 12;

  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (parent) parent.appendChild(e);
    return e;
  }

  // layers(tasks) -> Map alias -> layer; a cycle (never accepted by the
  // server) cannot make it loop: depth is bounded by the task count.
  function layers(tasks) {
    const byAlias = new Map(tasks.map((t) => [t.alias, t]));
    const memo = new Map();
    const depth = (t, n) => {
      if (memo.has(t.alias)) return memo.get(t.alias);
      let d = 0;
      if (n < tasks.length) {
        for (const a of t.deps || []) {
          const dep = byAlias.get(a);
          if (dep) d = Math.max(d, depth(dep, n + 1) + 1);
        }
      }
      memo.set(t.alias, d);
      return d;
    };
    tasks.forEach((t) => depth(t, 0));
    return memo;
  }

  // draw(container, tasks, onSelect): replaces the container's drawing.
  function draw(container, tasks, onSelect, selected) {
    const layer = layers(tasks);
    const columns = [];
    for (const t of tasks) {
      const l = layer.get(t.alias);
      (columns[l] = columns[l] || []).push(t);
    }
    const pos = new Map();
    let height = 0;
    columns.forEach((col, x) => {
      col.forEach((t, y) => {
        pos.set(t.alias, { x: PAD + x * (W + GAP_X), y: PAD + y * (H + GAP_Y) });
      });
      height = Math.max(height, col.length);
    });
    const width = PAD * 2 + columns.length * W + Math.max(0, columns.length - 1) * GAP_X;
    const svg = el('svg', {
      width, height: PAD * 2 + height * H + Math.max(0, height - 1) * GAP_Y,
      viewBox: `0 0 ${width} ${PAD * 2 + height * H + Math.max(0, height - 1) * GAP_Y}`,
      role: 'img', 'aria-label': `the job's ${tasks.length} tasks and their dependencies`,
    });
    const defs = el('defs', {}, svg);
    const marker = el('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' }, defs);
    el('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow' }, marker);
    const edges = el('g', { class: 'edges' }, svg);
    for (const t of tasks) {
      const to = pos.get(t.alias);
      for (const a of t.deps || []) {
        const from = pos.get(a);
        if (!from) continue;
        const x1 = from.x + W, y1 = from.y + H / 2, x2 = to.x, y2 = to.y + H / 2;
        const mid = (x1 + x2) / 2;
        el('path', { d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2 - 1},${y2}`, class: 'edge', 'data-from': a, 'data-to': t.alias, 'marker-end': 'url(#arrow)' }, edges);
      }
    }
    for (const t of tasks) {
      const p = pos.get(t.alias);
      const g = el('g', { class: `node state-${t.state}${selected === t.alias ? ' selected' : ''}`, 'data-task': t.alias, transform: `translate(${p.x},${p.y})`, tabindex: 0 }, svg);
      el('title', {}, g).textContent = `${t.alias}: ${t.state}${t.outcome ? ` (${t.outcome})` : ''}`;
      el('rect', { width: W, height: H, rx: 6 }, g);
      const name = el('text', { x: 10, y: 18, class: 'alias' }, g);
      name.textContent = t.alias.length > 18 ? `${t.alias.slice(0, 17)}…` : t.alias;
      const st = el('text', { x: 10, y: 35, class: 'sub' }, g);
      st.textContent = t.state + (t.exit_code !== undefined && t.state !== 'running' ? ` · exit ${t.exit_code}` : '');
      const pick = () => onSelect(selected === t.alias ? null : t.alias);
      g.addEventListener('click', pick);
      g.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pick(); } });
    }
    container.replaceChildren(svg);
  }

  window.jobrtDag = { draw, layers };
}());
