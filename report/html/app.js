// h2scope HTML report: draws connection timelines from the embedded data,
// filters and sorts. Captured strings only ever reach the page through
// textContent and setAttribute, never as markup.
(function () {
  'use strict';

  var SVGNS = 'http://www.w3.org/2000/svg';
  var LANES = ['tcp', 'tls', 'http', 'reset', 'goaway', 'stall'];
  var LANE_NAMES = { tcp: 'TCP', tls: 'TLS', http: 'HTTP', reset: 'RST_STREAM', goaway: 'GOAWAY', stall: 'stalls' };
  var MAX_SPANS_DRAWN = 400; // Gantt rows per connection
  var MAX_EVENT_ROWS = 2000; // rows of the events table

  // Errors go into #errors so that a headless browser's DOM dump shows them.
  function showError(msg) {
    var box = document.getElementById('errors');
    if (!box) { return; }
    var line = document.createElement('div');
    line.className = 'error';
    line.textContent = msg;
    box.appendChild(line);
    box.hidden = false;
  }
  window.addEventListener('error', function (e) {
    showError('error: ' + e.message + ' (' + (e.filename || '') + ':' + (e.lineno || 0) + ')');
  });
  window.addEventListener('unhandledrejection', function (e) { showError('unhandled rejection: ' + e.reason); });

  var data = { conns: [] };
  try {
    data = JSON.parse(document.getElementById('data').textContent);
  } catch (err) {
    showError('report data unreadable: ' + err.message);
  }
  var connByID = new Map();
  data.conns.forEach(function (c) { connByID.set(c.id, c); });

  function el(name, attrs, text) {
    var e = document.createElement(name);
    for (var k in attrs) { e.setAttribute(k, attrs[k]); }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function svg(name, attrs, text) {
    var e = document.createElementNS(SVGNS, name);
    for (var k in attrs) { e.setAttribute(k, attrs[k]); }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function title(node, text) { node.appendChild(svg('title', {}, text)); return node; }

  function fmtMS(ms) {
    var a = Math.abs(ms);
    if (a >= 10000) { return (ms / 1000).toFixed(1) + ' s'; }
    if (a >= 1000) { return (ms / 1000).toFixed(2) + ' s'; }
    if (a >= 100) { return ms.toFixed(0) + ' ms'; }
    if (a >= 1) { return ms.toFixed(1) + ' ms'; }
    if (a === 0) { return '0'; }
    return ms.toFixed(3) + ' ms';
  }
  function spanLabel(s) {
    var parts = [];
    if (s.m) { parts.push(s.m); }
    if (s.p) { parts.push(s.p.length > 70 ? s.p.slice(0, 69) + '…' : s.p); }
    if (s.c) { parts.push(String(s.c)); }
    if (s.g) { parts.push('grpc ' + s.g); }
    if (s.r) { parts.push('RST ' + s.r); }
    if (!s.c && !s.r) { parts.push('(' + s.o + ')'); }
    return parts.join(' ');
  }
  function spanName(s) { return s.s ? 'stream ' + s.s : '#' + s.q; }
  function evTitle(e) {
    var t = 'frame ' + e.f + ' · +' + fmtMS(e.t) + ' · ' + e.d + (e.s ? ' · stream ' + e.s : '') + '\n' + e.w;
    if (e.et !== undefined) { t += '\nuntil frame ' + e.ef + ', ' + fmtMS(e.et - e.t); }
    if (e.open) { t += '\nstill open at the end of the capture'; }
    return t;
  }

  // niceStep picks an axis step of 1, 2 or 5 × 10^k for about n ticks.
  function niceStep(span, n) {
    var raw = span / Math.max(1, n);
    var p = Math.pow(10, Math.floor(Math.log10(raw)));
    var m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }

  // Text widths, measured on a canvas in the fonts of style.css, so that
  // labels are placed where they fit: a label that would overlap another
  // or leave its lane is shortened or dropped (its mark keeps a title).
  var FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif';
  var measureCtx = null;
  var widthCache = new Map();
  function textWidth(text, size) {
    var key = size + '|' + text;
    var w = widthCache.get(key);
    if (w !== undefined) { return w; }
    if (!measureCtx) { measureCtx = document.createElement('canvas').getContext('2d'); }
    if (measureCtx) {
      measureCtx.font = size + 'px ' + FONT;
      w = measureCtx.measureText(text).width * 1.06 + 2;
    } else {
      w = text.length * size * 0.62;
    }
    if (widthCache.size > 20000) { widthCache.clear(); }
    widthCache.set(key, w);
    return w;
  }
  // fitText returns text, or its start and '…', in at most room px; ''
  // when not even a few characters fit.
  function fitText(text, size, room) {
    if (textWidth(text, size) <= room) { return text; }
    if (room < size * 3) { return ''; }
    var lo = 1, hi = text.length - 1, best = '';
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      var t = text.slice(0, mid) + '…';
      if (textWidth(t, size) <= room) { best = t; lo = mid + 1; } else { hi = mid - 1; }
    }
    return best.length >= 4 ? best : '';
  }
  function plural(n, word) { return n + ' ' + word + (n === 1 ? '' : 's'); }

  // axis draws time ticks whose labels do not overlap nor leave the view.
  function axis(root, x, end, L, P, W, y0, y1, size) {
    var g = svg('g', { 'class': 'axis band' });
    g.appendChild(svg('rect', { 'class': 'bandbg', x: 0, y: 0, width: W, height: y0 }));
    var step = niceStep(end, Math.max(2, Math.floor(P / 110)));
    var lastEnd = -Infinity;
    for (var i = 0; i * step <= end + step / 1000; i++) {
      var t = i * step;
      var gx = x(t);
      g.appendChild(svg('line', { 'class': 'grid', x1: gx.toFixed(1), x2: gx.toFixed(1), y1: y0 - 4, y2: y1 }));
      var label = t === 0 ? '0' : '+' + fmtMS(t);
      var w = textWidth(label, size);
      var lx = t === 0 ? gx : gx - w / 2;
      if (lx < lastEnd + 8 || lx + w > W - 2) { continue; }
      g.appendChild(svg('text', { x: lx.toFixed(1), y: y0 - 8 }, label));
      lastEnd = lx + w;
    }
    root.appendChild(g);
  }

  // clusters groups the marks of one half-lane: instants closer than
  // MERGE px, and stalls that overlap or nearly touch, become one mark
  // with a count.
  var MERGE = 6;
  function clusters(items) {
    var out = [], cur = null;
    items.forEach(function (it) {
      if (cur && cur.bar === it.bar && it.x0 <= cur.x1 + (it.bar ? 3 : MERGE)) {
        cur.items.push(it);
        cur.x1 = Math.max(cur.x1, it.x1);
      } else {
        cur = { x0: it.x0, x1: it.x1, bar: it.bar, items: [it] };
        out.push(cur);
      }
    });
    return out;
  }

  // drawTimeline returns the swimlanes and the Gantt chart of one
  // connection as one SVG sharing one time axis, width px wide.
  function drawTimeline(c, width) {
    var W = Math.max(480, Math.floor(width)), L = W < 700 ? 96 : 120, R = 12, AXIS = 24, LANE_H = 34, HALF = 17, ROW_H = 17;
    var P = W - L - R;
    var end = Math.max(c.dur_ms || 0, 0);
    c.events.forEach(function (e) { end = Math.max(end, e.t, e.et || 0); });
    c.spans.forEach(function (s) { end = Math.max(end, s.et); });
    if (end <= 0) { end = 1; }
    function x(t) { return L + Math.max(0, Math.min(1, t / end)) * P; }

    var used = {};
    c.events.forEach(function (e) { used[e.l] = true; });
    used.tcp = true;
    var lanes = LANES.filter(function (l) { return used[l]; });
    var spans = c.spans.slice(0, MAX_SPANS_DRAWN);
    var ganttTop = AXIS + lanes.length * LANE_H + (spans.length ? 22 : 0);
    var H = ganttTop + spans.length * ROW_H + 8;

    var root = svg('svg', { 'class': 'timeline', viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img' });
    root.appendChild(svg('title', {}, 'Timeline of connection ' + c.id));
    axis(root, x, end, L, P, W, AXIS, H, 11);

    // Swimlanes: client-sent events in the upper half, server-sent below.
    var evidence = new Set(c.evidence || []);
    var markOf = [];
    lanes.forEach(function (l, li) {
      var y = AXIS + li * LANE_H;
      var g = svg('g', { 'class': 'lane band', 'data-lane': l });
      g.appendChild(svg('rect', { 'class': 'bandbg', x: 0, y: y, width: W, height: LANE_H }));
      g.appendChild(svg('rect', { 'class': 'lanebg', x: L, y: y + 1, width: P, height: LANE_H - 2 }));
      g.appendChild(svg('line', { 'class': 'mid', x1: L, x2: L + P, y1: y + HALF, y2: y + HALF }));
      g.appendChild(svg('text', { 'class': 'lanelabel', x: 6, y: y + HALF + 4 }, LANE_NAMES[l]));
      g.appendChild(svg('text', { 'class': 'lanelabel dir', x: L - 6, y: y + 12, 'text-anchor': 'end' }, 'c→s'));
      g.appendChild(svg('text', { 'class': 'lanelabel dir', x: L - 6, y: y + LANE_H - 5, 'text-anchor': 'end' }, 's→c'));
      var marks = svg('g', {}), labels = svg('g', {});
      ['c2s', 's2c'].forEach(function (dir) {
        var top = dir === 'c2s' ? y + 3 : y + HALF + 2;
        var h = HALF - 5;
        var items = [];
        c.events.forEach(function (e, i) {
          if (e.l !== l || e.d !== dir) { return; }
          var bar = e.et !== undefined || !!e.open;
          var x0 = x(e.t), x1 = bar ? (e.et !== undefined ? x(e.et) : x(end)) : x0;
          items.push({ e: e, i: i, x0: x0, x1: x1, bar: bar });
        });
        items.sort(function (a, b) { return a.bar - b.bar || a.x0 - b.x0 || a.i - b.i; });
        var cls0 = clusters(items.filter(function (it) { return !it.bar; })).concat(clusters(items.filter(function (it) { return it.bar; })));
        cls0.sort(function (a, b) { return a.x0 - b.x0 || a.bar - b.bar; });
        var lastEnd = -Infinity;
        cls0.forEach(function (cl, ci) {
          var first = cl.items[0].e, n = cl.items.length;
          var cls = 'ev ev-' + l;
          if (l === 'tcp' && cl.items.some(function (it) { return it.e.w.indexOf('RST') === 0; })) { cls = 'ev ev-rst'; }
          if (cl.items.some(function (it) { return evidence.has(it.e.f) || (it.e.ef && evidence.has(it.e.ef)); })) { cls += ' evid'; }
          var mark, label, tip;
          if (cl.bar) {
            mark = svg('rect', { 'class': cls + ' stallbar', x: cl.x0.toFixed(1), y: top, width: Math.max(2, cl.x1 - cl.x0).toFixed(1), height: h });
          } else if (n === 1) {
            mark = svg('rect', { 'class': cls, x: (cl.x0 - 1.5).toFixed(1), y: top, width: 3, height: h });
          } else {
            mark = svg('rect', { 'class': cls + ' cluster', x: (cl.x0 - 2).toFixed(1), y: top, width: Math.max(4, cl.x1 - cl.x0 + 4).toFixed(1), height: h });
          }
          if (n === 1) {
            tip = evTitle(first);
            label = cl.bar && first.et !== undefined ? fmtMS(first.et - first.t) : first.w;
          } else {
            var same = cl.items.every(function (it) { return it.e.w === first.w; });
            var last = cl.items[n - 1].e;
            tip = n + ' events, frames ' + first.f + '–' + last.f + ', +' + fmtMS(first.t) + ' to +' + fmtMS(cl.bar ? Math.max.apply(null, cl.items.map(function (it) { return it.e.et || it.e.t; })) : last.t);
            if (cl.bar) {
              var total = 0;
              cl.items.forEach(function (it) { total += (it.e.et !== undefined ? it.e.et : end) - it.e.t; });
              tip += ', ' + fmtMS(total) + ' in all';
              label = '×' + n + ' · ' + fmtMS(total);
            } else {
              label = same ? first.w + ' ×' + n : '×' + n;
            }
            tip += '\n' + cl.items.slice(0, 8).map(function (it) { return 'frame ' + it.e.f + ': ' + it.e.w; }).join('\n') +
              (n > 8 ? '\n… and ' + (n - 8) + ' more' : '');
          }
          mark.setAttribute('data-i', cl.items[0].i);
          cl.items.forEach(function (it) { markOf[it.i] = mark; });
          marks.appendChild(title(mark, tip));
          // The label after its mark, up to the next mark of this
          // half-lane (or the view's edge); else before it, after the
          // previous label; else shortened on the side with more room;
          // else none (the mark keeps its title).
          if (label.length > 60) { label = label.slice(0, 59) + '…'; }
          var pad = n > 1 && !cl.bar ? 5 : 3;
          var rightX = Math.max(cl.x0, cl.x1) + pad;
          var next = W - 2;
          for (var k = ci + 1; k < cls0.length; k++) {
            if (cls0[k].x0 - 2 > rightX) { next = Math.min(next, cls0[k].x0 - 4); break; }
          }
          var rightRoom = next - rightX;
          var leftEnd = Math.min(cl.x0, cl.x1) - pad, leftStart = Math.max(L, lastEnd + 6);
          for (k = ci - 1; k >= 0; k--) {
            if (cls0[k].x1 + 2 < leftEnd) { leftStart = Math.max(leftStart, cls0[k].x1 + 5); break; }
          }
          var leftRoom = leftEnd - leftStart;
          if (rightX < lastEnd + 6) { rightRoom = -1; }
          // Whole, right then left; for a cluster its count alone; else
          // shortened on the side with more room.
          var short = n > 1 ? '×' + n : '';
          var text = '', lx;
          [label, short].some(function (cand) {
            if (!cand) { return false; }
            var cw = textWidth(cand, 10.5);
            if (cw <= rightRoom) { text = cand; lx = rightX; return true; }
            if (cw <= leftRoom) { text = cand; lx = leftEnd - cw; return true; }
            return false;
          });
          if (!text) {
            if (rightRoom >= leftRoom) {
              text = fitText(label, 10.5, rightRoom);
              lx = rightX;
            } else {
              text = fitText(label, 10.5, leftRoom);
              lx = leftEnd - textWidth(text, 10.5);
            }
            if (!text) { return; }
          }
          labels.appendChild(svg('text', { 'class': 'lbl', x: lx.toFixed(1), y: top + h - 2 }, text));
          lastEnd = lx + textWidth(text, 10.5);
        });
      });
      g.appendChild(marks);
      g.appendChild(labels);
      root.appendChild(g);
    });

    // Gantt: one row per request, from its first to its last frame.
    if (spans.length) {
      var head = svg('g', { 'class': 'band' });
      head.appendChild(svg('rect', { 'class': 'bandbg', x: 0, y: ganttTop - 20, width: W, height: 18 }));
      head.appendChild(svg('text', { 'class': 'lanelabel', x: 6, y: ganttTop - 7 },
        'requests' + (c.spans.length > spans.length || c.spans_omitted ? ' (first ' + spans.length + ')' : '')));
      root.appendChild(head);
      var gantt = svg('g', {});
      spans.forEach(function (s, i) {
        var y = ganttTop + i * ROW_H;
        var x0 = x(s.t), x1 = Math.max(x(s.et), x0 + 2);
        var g = svg('g', { 'class': 'span band' });
        g.appendChild(svg('rect', { 'class': 'bandbg', x: 0, y: y, width: W, height: ROW_H }));
        var name = fitText(spanName(s), 10.5, L - 10);
        if (name) { g.appendChild(svg('text', { 'class': 'lanelabel', x: L - 6, y: y + 12, 'text-anchor': 'end' }, name)); }
        var bar = svg('rect', { 'class': 'o-' + s.o, x: x0.toFixed(1), y: y + 2, width: (x1 - x0).toFixed(1), height: ROW_H - 4, rx: 2 });
        title(bar, spanName(s) + ': ' + spanLabel(s) + '\nframes ' + s.sf + '–' + s.ef +
          ', +' + fmtMS(s.t) + ' for ' + fmtMS(s.et - s.t) + '\noutcome ' + s.o);
        g.appendChild(bar);
        // The label right of the bar, else left of it, else on the side
        // with more room, shortened; never outside the plot.
        var label = spanLabel(s) + ' · ' + fmtMS(s.et - s.t);
        var right = W - 2 - (x1 + 4), left = (x0 - 4) - L;
        var w = textWidth(label, 10.5), lbl = null, text;
        if (w <= right) {
          lbl = svg('text', { 'class': 'spanlbl', x: (x1 + 4).toFixed(1), y: y + 12 }, label);
        } else if (w <= left) {
          lbl = svg('text', { 'class': 'spanlbl', x: (x0 - 4).toFixed(1), y: y + 12, 'text-anchor': 'end' }, label);
        } else if (right >= left) {
          text = fitText(label, 10.5, right);
          if (text) { lbl = svg('text', { 'class': 'spanlbl', x: (x1 + 4).toFixed(1), y: y + 12 }, text); }
        } else {
          text = fitText(label, 10.5, left);
          if (text) { lbl = svg('text', { 'class': 'spanlbl', x: (x0 - 4).toFixed(1), y: y + 12, 'text-anchor': 'end' }, text); }
        }
        if (lbl) { g.appendChild(lbl); }
        gantt.appendChild(g);
      });
      root.appendChild(gantt);
    }
    root._markOf = markOf;
    return root;
  }

  // The overview: per pool, lanes of per-bucket counts drawn as one path
  // each, and the findings' evidence as marks that open the connection.
  var OV_LANES = [
    { key: 'opened', name: 'opened / closed', h: 36 },
    { key: 'open', name: 'open at once', h: 24 },
    { key: 'resets', name: 'resets', h: 20, optional: true },
    { key: 'stall_ms', name: 'stalled', h: 20, optional: true },
    { key: 'failed', name: 'failed requests', h: 20, optional: true }
  ];
  var SEV_RANK = { info: 0, warning: 1, critical: 2 };
  function lane(pool, key, n) {
    var v = pool[key];
    return v && v.length === n ? v : null;
  }
  function laneMax(v) {
    var m = 0;
    if (v) { for (var i = 0; i < v.length; i++) { if (v[i] > m) { m = v[i]; } } }
    return m;
  }
  function laneSum(v) {
    var s = 0;
    if (v) { for (var i = 0; i < v.length; i++) { s += v[i]; } }
    return s;
  }
  function fmtNum(v) { return v >= 100 || v === Math.round(v) ? String(Math.round(v)) : v.toFixed(1); }
  // barsPath returns one path of bars for values v, from baseline y0,
  // up (dir -1) or down (dir 1), scaled so that max is h px.
  function barsPath(v, x, bw, y0, h, max, dir) {
    var d = [];
    for (var i = 0; i < v.length; i++) {
      if (!v[i]) { continue; }
      var bh = Math.max(1, v[i] / max * h);
      d.push('M' + x(i).toFixed(1) + ' ' + y0 + 'h' + Math.max(0.8, bw - 0.4).toFixed(2) + 'v' + (dir * bh).toFixed(1) + 'h' + (-Math.max(0.8, bw - 0.4)).toFixed(2) + 'z');
    }
    return d.join('');
  }
  function stepPath(v, x, bw, y0, h, max) {
    var d = 'M' + x(0).toFixed(1) + ' ' + y0;
    for (var i = 0; i < v.length; i++) {
      var yy = (y0 - (v[i] / max) * h).toFixed(1);
      d += 'V' + yy + 'H' + (x(i) + bw).toFixed(1);
    }
    return d + 'V' + y0 + 'Z';
  }

  function drawOverview(ov, width) {
    var W = Math.max(480, Math.floor(width)), L = W < 700 ? 104 : 130, R = 84, AXIS = 24, HEAD = 20, MARKS = 15, GAP = 10;
    var P = W - L - R, n = ov.n, bw = P / n;
    var span = n * ov.bucket_ms;
    function xb(i) { return L + i * bw; }
    function xt(t) { return L + Math.max(0, Math.min(1, t / span)) * P; }
    // The sum of all pools first, when there are several, then each pool
    // with lower lanes.
    var blocks = [];
    if (ov.all) { blocks.push({ pool: ov.all, marks: ov.marks || [], scale: 1 }); }
    ov.pools.forEach(function (pool, pi) {
      blocks.push({ pool: pool, marks: (ov.marks || []).filter(function (m) { return m.p === pi; }), scale: ov.all ? 0.7 : 1 });
    });
    var layout = blocks.map(function (b) {
      var lanes = OV_LANES.filter(function (l) { return !l.optional || laneMax(lane(b.pool, l.key, n)) > 0; }).map(function (l) {
        return { key: l.key, name: l.name, h: Math.max(16, Math.round(l.h * b.scale)) };
      });
      var h = HEAD + MARKS;
      lanes.forEach(function (l) { h += l.h; });
      return { pool: b.pool, marks: b.marks, lanes: lanes, h: h + GAP };
    });
    var H = AXIS;
    layout.forEach(function (p) { H += p.h; });
    H += 4;
    var root = svg('svg', { 'class': 'timeline overview', viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img' });
    root.appendChild(svg('title', {}, 'Overview of ' + plural(ov.conns, 'connection')));
    axis(root, xt, span, L, P, W, AXIS, H, 11);

    var y = AXIS;
    root._blocks = [];
    layout.forEach(function (p) {
      var pool = p.pool;
      root._blocks.push({ top: y, bottom: y + p.h, pool: pool });
      var head = svg('g', { 'class': 'band pool' });
      head.appendChild(svg('rect', { 'class': 'bandbg', x: 0, y: y, width: W, height: HEAD }));
      var totals = [plural(pool.conns, 'connection')];
      var opened = laneSum(lane(pool, 'opened', n)), closed = laneSum(lane(pool, 'closed', n));
      totals.push(opened + ' opened', closed + ' closed');
      var resets = laneSum(lane(pool, 'resets', n)), failed = laneSum(lane(pool, 'failed', n));
      if (resets) { totals.push(plural(resets, 'reset')); }
      if (failed) { totals.push(failed + ' failed'); }
      var name = fitText(pool.name + ' · ' + totals.join(', '), 12, W - 8);
      if (name) { head.appendChild(svg('text', { 'class': 'poolname', x: 4, y: y + 14 }, name)); }
      root.appendChild(head);
      y += HEAD;

      // Evidence marks, merged where they would touch.
      var mg = svg('g', { 'class': 'band marks' });
      mg.appendChild(svg('rect', { 'class': 'bandbg', x: 0, y: y, width: W, height: MARKS }));
      mg.appendChild(svg('text', { 'class': 'lanelabel', x: 6, y: y + 12 }, 'findings'));
      var items = p.marks.map(function (m) { return { m: m, x0: xt(m.t), x1: xt(m.t), bar: false }; });
      var lastEnd = -Infinity;
      var mcl = clusters(items);
      mcl.forEach(function (cl, ci) {
        var worst = cl.items[0].m;
        cl.items.forEach(function (it) { if (SEV_RANK[it.m.s] > SEV_RANK[worst.s]) { worst = it.m; } });
        // A link to the connection, when the page lists it.
        var listed = !!document.getElementById('conn-' + worst.c);
        var a = listed ? svg('a', { href: '#c' + worst.c + '-f' + worst.f, 'class': 'ovmark sev-' + worst.s })
          : svg('g', { 'class': 'ovmark unlisted sev-' + worst.s });
        var cx = (cl.x0 + cl.x1) / 2, half = Math.max(4, (cl.x1 - cl.x0) / 2 + 3);
        a.appendChild(svg('path', { d: 'M' + (cx - half).toFixed(1) + ' ' + (y + 2) + 'H' + (cx + half).toFixed(1) + 'L' + cx.toFixed(1) + ' ' + (y + MARKS - 1) + 'Z' }));
        var bottom = y + MARKS;
        p.lanes.forEach(function (l) { bottom += l.h; });
        a.appendChild(svg('line', { 'class': 'ovguide', x1: cx.toFixed(1), x2: cx.toFixed(1), y1: y + MARKS, y2: bottom }));
        title(a, cl.items.slice(0, 8).map(function (it) {
          var m = it.m;
          return 'finding ' + m.n + ' ' + m.k + ' (' + m.s + ' on conn ' + m.c + ') · frame ' + m.f + ' · +' + fmtMS(m.t) + '\n  ' + m.w;
        }).join('\n') + (cl.items.length > 8 ? '\n… and ' + (cl.items.length - 8) + ' more' : '') +
          (listed ? '\n(click to open the connection)' : '\n(connection ' + worst.c + ' is not listed in this page: h2scope timeline --conn ' + worst.c + ')'));
        mg.appendChild(a);
        if (cl.items.length > 1) {
          var lx = cx + half + 2, label = '×' + cl.items.length;
          var nextX = ci + 1 < mcl.length ? (mcl[ci + 1].x0 + mcl[ci + 1].x1) / 2 - Math.max(4, (mcl[ci + 1].x1 - mcl[ci + 1].x0) / 2 + 3) - 2 : W - 2;
          if (lx >= lastEnd + 4 && lx + textWidth(label, 10) <= Math.min(W - 2, nextX)) {
            mg.appendChild(svg('text', { 'class': 'lbl count', x: lx.toFixed(1), y: y + 12 }, label));
            lastEnd = lx + textWidth(label, 10);
          }
        }
      });
      root.appendChild(mg);
      y += MARKS;

      p.lanes.forEach(function (l) {
        var g = svg('g', { 'class': 'band ovlane', 'data-lane': l.key });
        g.appendChild(svg('rect', { 'class': 'bandbg', x: 0, y: y, width: W, height: l.h }));
        g.appendChild(svg('rect', { 'class': 'lanebg', x: L, y: y + 1, width: P, height: l.h - 2 }));
        g.appendChild(svg('text', { 'class': 'lanelabel', x: 6, y: y + l.h / 2 + 4 }, fitText(l.name, 11, L - 12) || l.key));
        var maxLabel;
        if (l.key === 'opened') {
          var op = lane(pool, 'opened', n), cl = lane(pool, 'closed', n);
          var m = Math.max(laneMax(op), laneMax(cl), 1), mid = y + l.h / 2;
          g.appendChild(svg('line', { 'class': 'mid', x1: L, x2: L + P, y1: mid, y2: mid }));
          if (op) { g.appendChild(title(svg('path', { 'class': 'ov-opened', d: barsPath(op, xb, bw, mid, l.h / 2 - 2, m, -1) }), opened + ' opened (SYN seen)')); }
          if (cl) { g.appendChild(title(svg('path', { 'class': 'ov-closed', d: barsPath(cl, xb, bw, mid, l.h / 2 - 2, m, 1) }), closed + ' closed (FIN or RST)')); }
          maxLabel = 'max ' + fmtNum(m);
        } else if (l.key === 'open') {
          var v = lane(pool, 'open', n), mo = Math.max(laneMax(v), 1);
          if (v) { g.appendChild(title(svg('path', { 'class': 'ov-open', d: stepPath(v, xb, bw, y + l.h - 1, l.h - 4, mo) }), 'at most ' + laneMax(v) + ' open at once')); }
          maxLabel = 'max ' + fmtNum(laneMax(v));
        } else {
          var vv = lane(pool, l.key, n), mm = Math.max(laneMax(vv), 1e-9);
          var what = l.key === 'stall_ms' ? fmtMS(laneSum(vv)) + ' stalled in all (summed over connections)' : fmtNum(laneSum(vv)) + ' ' + l.name;
          g.appendChild(title(svg('path', { 'class': 'ov-' + l.key, d: barsPath(vv, xb, bw, y + l.h - 1, l.h - 4, mm, -1) }), what));
          maxLabel = 'max ' + (l.key === 'stall_ms' ? fmtMS(laneMax(vv)) : fmtNum(laneMax(vv)));
        }
        var ml = fitText(maxLabel, 10, R - 8);
        if (ml) { g.appendChild(svg('text', { 'class': 'lanelabel', x: L + P + 6, y: y + l.h / 2 + 4 }, ml)); }
        root.appendChild(g);
        y += l.h;
      });
      y += GAP;
    });
    return root;
  }

  // The overview's readout: the values of the bucket under the pointer.
  function overviewReadout(ov, svgEl, out, width) {
    var W = Math.max(480, Math.floor(width)), L = W < 700 ? 104 : 130, R = 84, P = W - L - R;
    svgEl.addEventListener('mousemove', function (ev) {
      var r = svgEl.getBoundingClientRect();
      var i = Math.floor((ev.clientX - r.left - L) / P * ov.n);
      if (i < 0 || i >= ov.n) { out.textContent = ''; return; }
      var t0 = i * ov.bucket_ms;
      var y = ev.clientY - r.top, block = null;
      (svgEl._blocks || []).forEach(function (b) { if (y >= b.top && y < b.bottom) { block = b; } });
      if (!block) { out.textContent = ''; return; }
      out.textContent = '+' + fmtMS(t0) + ' to +' + fmtMS(t0 + ov.bucket_ms) + ': ' + [block.pool].map(function (p) {
        function at(k) { var v = p[k]; return v && v.length === ov.n ? v[i] : 0; }
        return p.name + ': ' + at('opened') + ' opened, ' + at('closed') + ' closed, ' + at('open') + ' open, ' +
          plural(at('resets'), 'reset') + ', ' + fmtMS(at('stall_ms')) + ' stalled, ' + at('failed') + ' failed';
      }).join(' · ');
    });
  }

  function renderOverview() {
    var box = document.getElementById('ov');
    var ov = data.overview;
    if (!box) { return; }
    box.textContent = '';
    if (!ov || !ov.pools || !ov.pools.length) {
      box.appendChild(el('p', { 'class': 'empty' }, 'No connections.'));
      return;
    }
    var opened = 0, closed = 0, resets = 0, failed = 0;
    ov.pools.forEach(function (p) {
      opened += laneSum(p.opened); closed += laneSum(p.closed); resets += laneSum(p.resets); failed += laneSum(p.failed);
    });
    var npools = ov.pools.length + (ov.pools_folded ? ov.pools_folded - 1 : 0);
    box.appendChild(el('p', { 'class': 'ovsum' }, plural(ov.conns, 'connection') + ' in ' + plural(npools, 'pool') +
      ' over ' + fmtMS(ov.span_ms) + ', in buckets of ' + fmtMS(ov.bucket_ms) + ': ' + opened + ' opened, ' + closed + ' closed, ' +
      plural(resets, 'reset') + ', ' + failed + ' failed ' + (failed === 1 ? 'request' : 'requests') + ', ' +
      plural((ov.marks || []).length, 'evidence mark') + (ov.events_omitted ? ' (' + plural(ov.events_omitted, 'timeline event') + ' past the caps not counted)' : '')));
    var width = box.clientWidth || 1200;
    var s = drawOverview(ov, width);
    box.appendChild(s);
    var out = el('p', { 'class': 'ovread' }, '');
    box.appendChild(out);
    overviewReadout(ov, s, out, width);
  }

  function legend() {
    var p = el('p', { 'class': 'legend' });
    p.appendChild(document.createTextNode('Requests:'));
    ['ok', 'error', 'reset', 'incomplete'].forEach(function (o) {
      p.appendChild(el('i', { 'class': 'o-' + o }));
      p.appendChild(document.createTextNode(o));
    });
    p.appendChild(document.createTextNode(' · outlined marks are cited by findings · ×N marks N events merged · hover a mark for its frames'));
    return p;
  }

  function eventsTable(c) {
    var d = el('details', { 'class': 'events' });
    var n = c.events.length + (c.events_omitted || 0);
    d.appendChild(el('summary', {}, 'Events (' + n + (c.events_omitted ? ', first ' + c.events.length + ' kept' : '') + ')'));
    var table = el('table', {});
    var head = el('tr', {});
    ['Frame', 'Time', 'Dir', 'Lane', 'Stream', 'What'].forEach(function (h) { head.appendChild(el('th', {}, h)); });
    table.appendChild(el('thead', {})).appendChild(head);
    var body = el('tbody', {});
    var seen = new Set();
    c.events.slice(0, MAX_EVENT_ROWS).forEach(function (e, i) {
      var tr = el('tr', { 'data-i': i });
      if (!seen.has(e.f)) { tr.id = 'c' + c.id + '-f' + e.f; seen.add(e.f); }
      tr.appendChild(el('td', { 'class': 'num' }, String(e.f)));
      tr.appendChild(el('td', { 'class': 'num' }, '+' + fmtMS(e.t)));
      tr.appendChild(el('td', {}, e.d));
      tr.appendChild(el('td', {}, e.l));
      tr.appendChild(el('td', { 'class': 'num' }, e.s ? String(e.s) : ''));
      var what = e.w;
      if (e.et !== undefined) { what += ' (until frame ' + e.ef + ', ' + fmtMS(e.et - e.t) + ')'; }
      if (e.open) { what += ' (open at the end)'; }
      tr.appendChild(el('td', {}, what));
      body.appendChild(tr);
    });
    table.appendChild(body);
    d.appendChild(table);
    return d;
  }

  function timelineWidth(box) {
    var cs = getComputedStyle(box);
    return box.clientWidth - parseFloat(cs.paddingLeft || 0) - parseFloat(cs.paddingRight || 0);
  }

  function render(details) {
    if (details.getAttribute('data-drawn')) { return; }
    details.setAttribute('data-drawn', '1');
    var c = connByID.get(Number(details.getAttribute('data-conn')));
    var box = details.querySelector('.tl');
    if (!c || !box) { return; }
    if (c.trimmed) {
      box.appendChild(el('p', { 'class': 'hint' }, 'This connection\'s ' + plural(c.events_omitted, 'event') + ' and ' + plural(c.spans_omitted, 'request') +
        ' are not embedded, to keep the page small; see them with: h2scope timeline --conn ' + c.id + ' CAPTURE'));
      return;
    }
    box.appendChild(legend());
    box.appendChild(drawTimeline(c, timelineWidth(box)));
    if (c.spans.length > MAX_SPANS_DRAWN || c.spans_omitted) {
      box.appendChild(el('p', { 'class': 'hint' }, plural(c.spans.length - Math.min(c.spans.length, MAX_SPANS_DRAWN) + (c.spans_omitted || 0), 'more request') + ' not drawn.'));
    }
    box.appendChild(eventsTable(c));
  }

  // Evidence links (#c<conn>-f<frame>) open the connection and mark the
  // event at that frame, else the stall it ends, else the nearest one.
  function goTo(hash) {
    var m = /^#c(\d+)-f(\d+)$/.exec(hash);
    var mc = /^#conn-(\d+)$/.exec(hash);
    if (mc) {
      var dc = document.getElementById('conn-' + mc[1]);
      if (dc) { dc.open = true; render(dc); dc.scrollIntoView({ block: 'start' }); }
      return;
    }
    if (!m) { return; }
    var d = document.getElementById('conn-' + m[1]);
    var c = connByID.get(Number(m[1]));
    if (!d || !c) { return; }
    d.open = true;
    render(d);
    var frame = Number(m[2]), best = -1, bestDist = Infinity;
    c.events.forEach(function (e, i) {
      var dist = e.f === frame || e.ef === frame ? 0 : Math.abs(e.f - frame);
      if (dist < bestDist) { best = i; bestDist = dist; }
    });
    document.querySelectorAll('.hl').forEach(function (n) { n.classList.remove('hl'); });
    if (best < 0) { d.scrollIntoView({ block: 'start' }); return; }
    var svgEl = d.querySelector('svg.timeline');
    var mark = svgEl && svgEl._markOf ? svgEl._markOf[best] : null;
    var row = d.querySelector('tr[data-i="' + best + '"]');
    if (row) { row.classList.add('hl'); }
    if (mark) { mark.classList.add('hl'); mark.scrollIntoView({ block: 'center' }); } else { d.scrollIntoView({ block: 'start' }); }
  }

  document.addEventListener('click', function (e) {
    var a = e.target.closest && e.target.closest('a[href^="#c"]');
    if (a) {
      e.preventDefault();
      var h = a.getAttribute('href');
      history.pushState(null, '', h);
      goTo(h);
      return;
    }
    var b = e.target.closest && e.target.closest('button.copy');
    if (b) { copy(b); }
  });
  window.addEventListener('hashchange', function () { goTo(location.hash); });

  function copy(b) {
    var text = b.getAttribute('data-copy');
    var done = function () { b.textContent = 'copied'; setTimeout(function () { b.textContent = 'copy'; }, 1200); };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
    } else {
      fallbackCopy(text);
      done();
    }
  }
  function fallbackCopy(text) {
    var ta = el('textarea', {});
    ta.value = text;
    document.body.appendChild(ta);
    ta.select();
    try { document.execCommand('copy'); } catch (err) { /* nothing more to try */ }
    ta.remove();
  }

  renderOverview();
  // Redraw at the new width when the window is resized.
  var lastWidth = window.innerWidth, resizeTimer = 0;
  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      if (window.innerWidth === lastWidth) { return; }
      lastWidth = window.innerWidth;
      renderOverview();
      document.querySelectorAll('details.conn[data-drawn]').forEach(function (d) {
        var c = connByID.get(Number(d.getAttribute('data-conn')));
        var old = d.querySelector('svg.timeline');
        if (c && old) { old.replaceWith(drawTimeline(c, timelineWidth(d.querySelector('.tl')))); }
      });
    }, 200);
  });

  document.querySelectorAll('details.conn').forEach(function (d) {
    d.addEventListener('toggle', function () { if (d.open) { render(d); } });
    if (d.open) { render(d); }
  });

  // Click-to-sort tables: numbers by value (data-sort when present), the
  // rest as text; clicking again reverses.
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var ths = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(ths, function (th, col) {
      th.addEventListener('click', function () {
        var dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
        Array.prototype.forEach.call(ths, function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', dir > 0 ? 'ascending' : 'descending');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var keys = rows.map(function (r) {
          var cell = r.cells[col];
          return cell ? (cell.getAttribute('data-sort') !== null ? cell.getAttribute('data-sort') : cell.textContent.trim()) : '';
        });
        var numeric = keys.every(function (k) { return k === '' || k === '-' || isFinite(Number(k.replace(/\/.*/, ''))); });
        var idx = rows.map(function (r, i) { return i; });
        idx.sort(function (a, b) {
          var ka = keys[a], kb = keys[b], v;
          if (numeric) {
            var na = parseFloat(ka), nb = parseFloat(kb);
            na = isNaN(na) ? -Infinity : na;
            nb = isNaN(nb) ? -Infinity : nb;
            v = na < nb ? -1 : na > nb ? 1 : 0;
          } else {
            v = ka.localeCompare(kb, undefined, { numeric: true });
          }
          return v * dir || a - b;
        });
        var frag = document.createDocumentFragment();
        idx.forEach(function (i) { frag.appendChild(rows[i]); });
        body.appendChild(frag);
      });
    });
  });

  // Text and severity filters over findings, connections and timelines.
  var filterBox = document.getElementById('filter');
  var findings = Array.prototype.slice.call(document.querySelectorAll('article.finding'));
  var connRows = Array.prototype.slice.call(document.querySelectorAll('#conn-table tbody tr'));
  var timelines = Array.prototype.slice.call(document.querySelectorAll('details.conn'));
  var texts = new Map();
  function textOf(node) {
    var t = texts.get(node);
    if (t === undefined) {
      var src = node.tagName === 'DETAILS' ? node.querySelector('summary') : node;
      t = (src ? src.textContent : '').toLowerCase();
      texts.set(node, t);
    }
    return t;
  }
  function applyFilter() {
    var q = filterBox ? filterBox.value.trim().toLowerCase() : '';
    var sevs = new Set();
    document.querySelectorAll('input[name=sev]').forEach(function (i) { if (i.checked) { sevs.add(i.value); } });
    var shown = 0;
    findings.forEach(function (f) {
      f.hidden = !sevs.has(f.getAttribute('data-sev')) || (q !== '' && textOf(f).indexOf(q) < 0);
      if (!f.hidden) { shown++; }
    });
    var rows = 0;
    connRows.forEach(function (r) { r.hidden = q !== '' && textOf(r).indexOf(q) < 0; if (!r.hidden) { rows++; } });
    timelines.forEach(function (d) { d.hidden = q !== '' && textOf(d).indexOf(q) < 0; });
    var out = document.getElementById('shown');
    if (out) {
      out.textContent = (q !== '' || sevs.size < 3) ? 'showing ' + shown + ' of ' + plural(findings.length, 'finding') + ', ' +
        rows + ' of ' + plural(connRows.length, 'connection') : '';
    }
  }
  var timer = 0;
  if (filterBox) {
    filterBox.addEventListener('input', function () { clearTimeout(timer); timer = setTimeout(applyFilter, 120); });
  }
  document.querySelectorAll('input[name=sev]').forEach(function (i) { i.addEventListener('change', applyFilter); });

  if (location.hash) { goTo(location.hash); }
  document.documentElement.setAttribute('data-ready', '1');
})();
