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
    var raw = span / n;
    var p = Math.pow(10, Math.floor(Math.log10(raw)));
    var m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }

  // drawTimeline returns the swimlanes and the Gantt chart of one
  // connection as one SVG sharing one time axis.
  function drawTimeline(c) {
    var W = 1200, L = 120, R = 20, AXIS = 22, LANE_H = 28, ROW_H = 17;
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

    // Axis and grid.
    var axis = svg('g', { 'class': 'axis' });
    var step = niceStep(end, 10);
    for (var t = 0; t <= end + step / 1000; t += step) {
      var gx = x(t).toFixed(1);
      axis.appendChild(svg('line', { 'class': 'grid', x1: gx, x2: gx, y1: AXIS - 4, y2: H }));
      axis.appendChild(svg('text', { x: gx, y: 12, 'text-anchor': t === 0 ? 'start' : 'middle' }, t === 0 ? '0' : '+' + fmtMS(t)));
    }
    root.appendChild(axis);

    // Swimlanes: client-sent events in the upper half, server-sent below.
    var laneY = {};
    lanes.forEach(function (l, i) {
      var y = AXIS + i * LANE_H;
      laneY[l] = y;
      root.appendChild(svg('rect', { 'class': 'lanebg', x: L, y: y + 1, width: P, height: LANE_H - 2 }));
      root.appendChild(svg('line', { 'class': 'mid', x1: L, x2: L + P, y1: y + LANE_H / 2, y2: y + LANE_H / 2 }));
      root.appendChild(svg('text', { 'class': 'lanelabel', x: 6, y: y + LANE_H / 2 + 4 }, LANE_NAMES[l]));
      root.appendChild(svg('text', { 'class': 'lanelabel', x: L - 6, y: y + 11, 'text-anchor': 'end', 'font-size': 9 }, 'c→s'));
      root.appendChild(svg('text', { 'class': 'lanelabel', x: L - 6, y: y + LANE_H - 4, 'text-anchor': 'end', 'font-size': 9 }, 's→c'));
    });
    var evidence = new Set(c.evidence || []);
    var lastLabel = {};
    var marks = svg('g', {}), labels = svg('g', {});
    c.events.forEach(function (e, i) {
      var y = laneY[e.l];
      if (y === undefined) { return; }
      var top = e.d === 'c2s' ? y + 3 : y + LANE_H / 2 + 1;
      var h = LANE_H / 2 - 4;
      var cls = 'ev ev-' + e.l;
      if (e.l === 'tcp' && e.w.indexOf('RST') === 0) { cls = 'ev ev-rst'; }
      if (evidence.has(e.f) || (e.ef && evidence.has(e.ef))) { cls += ' evid'; }
      var x0 = x(e.t), x1 = x0, mark;
      if (e.et !== undefined || e.open) {
        x1 = e.et !== undefined ? x(e.et) : x(end);
        mark = svg('rect', { 'class': cls + ' stallbar', x: x0.toFixed(1), y: top, width: Math.max(2, x1 - x0).toFixed(1), height: h });
      } else {
        mark = svg('rect', { 'class': cls, x: (x0 - 1.5).toFixed(1), y: top, width: 3, height: h });
      }
      mark.setAttribute('data-i', i);
      marks.appendChild(title(mark, evTitle(e)));
      // A label where it does not overlap the previous one in its half-lane.
      var key = e.l + e.d;
      var label = e.w;
      if (e.et !== undefined) { label = fmtMS(e.et - e.t); }
      if (label.length > 40) { label = label.slice(0, 39) + '…'; }
      var lx = Math.max(x0, x1) + 3;
      if ((lastLabel[key] === undefined || lx > lastLabel[key] + 6) && lx + label.length * 5.6 < W) {
        labels.appendChild(svg('text', { 'class': 'lbl', x: lx.toFixed(1), y: top + h - 2 }, label));
        lastLabel[key] = lx + label.length * 5.6;
      }
    });
    root.appendChild(marks);
    root.appendChild(labels);

    // Gantt: one row per request, from its first to its last frame.
    if (spans.length) {
      root.appendChild(svg('text', { 'class': 'lanelabel', x: 6, y: ganttTop - 7 },
        'requests' + (c.spans.length > spans.length || c.spans_omitted ? ' (first ' + spans.length + ')' : '')));
      var gantt = svg('g', {});
      spans.forEach(function (s, i) {
        var y = ganttTop + i * ROW_H;
        var x0 = x(s.t), x1 = Math.max(x(s.et), x0 + 2);
        var g = svg('g', { 'class': 'span' });
        g.appendChild(svg('text', { 'class': 'lanelabel', x: L - 6, y: y + 12, 'text-anchor': 'end' }, spanName(s)));
        var bar = svg('rect', { 'class': 'o-' + s.o, x: x0.toFixed(1), y: y + 2, width: (x1 - x0).toFixed(1), height: ROW_H - 4, rx: 2 });
        title(bar, spanName(s) + ': ' + spanLabel(s) + '\nframes ' + s.sf + '–' + s.ef +
          ', +' + fmtMS(s.t) + ' for ' + fmtMS(s.et - s.t) + '\noutcome ' + s.o);
        g.appendChild(bar);
        var label = spanLabel(s) + ' · ' + fmtMS(s.et - s.t);
        var w = label.length * 5.8;
        var lbl = x1 + 4 + w < W ? svg('text', { 'class': 'spanlbl', x: (x1 + 4).toFixed(1), y: y + 12 }, label)
          : svg('text', { 'class': 'spanlbl', x: (x0 - 4).toFixed(1), y: y + 12, 'text-anchor': 'end' }, label);
        g.appendChild(lbl);
        gantt.appendChild(g);
      });
      root.appendChild(gantt);
    }
    return root;
  }

  function legend() {
    var p = el('p', { 'class': 'legend' });
    p.appendChild(document.createTextNode('Requests:'));
    ['ok', 'error', 'reset', 'incomplete'].forEach(function (o) {
      p.appendChild(el('i', { 'class': 'o-' + o }));
      p.appendChild(document.createTextNode(o));
    });
    p.appendChild(document.createTextNode(' · outlined marks are cited by findings · hover a mark for its frame'));
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

  function render(details) {
    if (details.getAttribute('data-drawn')) { return; }
    details.setAttribute('data-drawn', '1');
    var c = connByID.get(Number(details.getAttribute('data-conn')));
    var box = details.querySelector('.tl');
    if (!c || !box) { return; }
    if (c.trimmed) {
      box.appendChild(el('p', { 'class': 'hint' }, 'This connection\'s ' + c.events_omitted + ' events and ' + c.spans_omitted +
        ' requests are not embedded, to keep the page small; see them with: h2scope timeline --conn ' + c.id + ' CAPTURE'));
      return;
    }
    box.appendChild(legend());
    box.appendChild(drawTimeline(c));
    if (c.spans.length > MAX_SPANS_DRAWN || c.spans_omitted) {
      box.appendChild(el('p', { 'class': 'hint' }, (c.spans.length - Math.min(c.spans.length, MAX_SPANS_DRAWN) + (c.spans_omitted || 0)) + ' more requests not drawn.'));
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
    var mark = d.querySelector('svg [data-i="' + best + '"]');
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
      out.textContent = (q !== '' || sevs.size < 3) ? 'showing ' + shown + ' of ' + findings.length + ' findings, ' +
        rows + ' of ' + connRows.length + ' connections' : '';
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
