/* netlm-imaging study viewer: three orthogonal views of the embedded image with
 * liver / lesion / segment / PET overlays. No dependencies, no network.
 * Data: <script type="application/json" id="netlm-data"> (see report/viewer_data.py).
 * Positions are full-grid voxel indices [i, j, k]; LPS = affine * [i, j, k, 1]. */
(function () {
  "use strict";
  var tStart = performance.now();
  var el = document.getElementById("netlm-data");
  if (!el) { return; }
  var D = JSON.parse(el.textContent);
  var S = D.shape;

  // native base64 decoding where the browser has it (#b64=js forces the portable path, for tests)
  var NATIVE_B64 = typeof Uint8Array.fromBase64 === "function" && !/(?:^#|&)b64=js/.test(location.hash);
  function text(s) {  // large base64 blocks live in their own <script> elements
    return (s && s.blob !== undefined) ? document.getElementById("netlm-blob-" + s.blob).textContent : s;
  }
  function b64bytes(s) {
    if (NATIVE_B64) { return Uint8Array.fromBase64(text(s)); }  // native, fast
    var bin = atob(text(s)), n = bin.length, out = new Uint8Array(n);
    for (var i = 0; i < n; i++) { out[i] = bin.charCodeAt(i); }
    return out;
  }
  function typed(s, dtype) {
    var b = b64bytes(s);
    if (dtype === "uint16") { return new Uint16Array(b.buffer); }
    if (dtype === "uint32") { return new Uint32Array(b.buffer); }
    return b;
  }
  function rle(enc, n) {
    var vals = typed(enc.values, enc.dtype), lens = typed(enc.lengths, "uint32");
    var out = enc.dtype === "uint16" ? new Uint16Array(n) : new Uint8Array(n), p = 0;
    for (var r = 0; r < lens.length; r++) {
      if (vals[r]) { out.fill(vals[r], p, p + lens[r]); }
      p += lens[r];
    }
    return { data: out, strides: enc.strides };
  }

  var MS = D.mask_shape, MST = D.mask_stride, nMask = MS[0] * MS[1] * MS[2];
  var layers = {};
  Object.keys(D.layers).forEach(function (k) { layers[k] = rle(D.layers[k], nMask); });
  var IMG = D.image, img = b64bytes(IMG.data), IS = IMG.shape, IF = IMG.factor, IST = IMG.strides;
  var pet = null;
  if (D.pet) { pet = { d: b64bytes(D.pet.data), s: D.pet.shape, f: D.pet.factor, max: D.pet.encode_max }; }
  var lesionById = {};
  D.lesions.forEach(function (l) { lesionById[l.id] = l; });

  // ------------------------------------------------------------------ geometry
  var A = D.affine;
  var Ainv = (function () {  // inverse of the 3x3 part (orthogonal columns scaled)
    var m = [[A[0][0], A[0][1], A[0][2]], [A[1][0], A[1][1], A[1][2]], [A[2][0], A[2][1], A[2][2]]];
    var det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
      m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    var inv = [[], [], []];
    for (var r = 0; r < 3; r++) {
      for (var c = 0; c < 3; c++) {
        var r1 = (c + 1) % 3, r2 = (c + 2) % 3, c1 = (r + 1) % 3, c2 = (r + 2) % 3;
        inv[r][c] = (m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1]) / det;
      }
    }
    return inv;
  })();
  function lpsToIndex(p) {
    var d = [p[0] - A[0][3], p[1] - A[1][3], p[2] - A[2][3]], out = [0, 0, 0];
    for (var r = 0; r < 3; r++) { out[r] = Ainv[r][0] * d[0] + Ainv[r][1] * d[1] + Ainv[r][2] * d[2]; }
    return out;
  }
  function indexToLps(q) {
    var out = [0, 0, 0];
    for (var r = 0; r < 3; r++) { out[r] = A[r][0] * q[0] + A[r][1] * q[1] + A[r][2] * q[2] + A[r][3]; }
    return out;
  }
  function clampPos(p) {
    return [0, 1, 2].map(function (a) { return Math.max(0, Math.min(S[a] - 1, Math.round(p[a]))); });
  }
  function maskAt(name, q) {
    var L = layers[name];
    if (!L) { return 0; }
    var i = Math.floor(q[0] / MST[0]), j = Math.floor(q[1] / MST[1]), k = Math.floor(q[2] / MST[2]);
    if (i >= MS[0] || j >= MS[1] || k >= MS[2]) { return 0; }
    return L.data[i * L.strides[0] + j * L.strides[1] + k * L.strides[2]];
  }
  function imageCode(q) {  // the 8-bit code of the image at q (0 and 255 hold everything beyond the range)
    var i = Math.min(IS[0] - 1, Math.floor(q[0] / IF[0])), j = Math.min(IS[1] - 1, Math.floor(q[1] / IF[1]));
    var k = Math.min(IS[2] - 1, Math.floor(q[2] / IF[2]));
    return img[i * IST[0] + j * IST[1] + k * IST[2]];
  }
  function petCode(q) {
    if (!pet) { return null; }
    var i = Math.min(pet.s[0] - 1, Math.floor(q[0] / pet.f[0])), j = Math.min(pet.s[1] - 1, Math.floor(q[1] / pet.f[1]));
    var k = Math.min(pet.s[2] - 1, Math.floor(q[2] / pet.f[2]));
    return pet.d[(i * pet.s[1] + j) * pet.s[2] + k];
  }
  // A value read back from its 8-bit code over [lo, hi], with the decimals its step resolves; a code at
  // an end of the range says so ("≥ 300 HU"): the page embeds values beyond it as the end, so a
  // calcification or the hottest PET voxel must not read as the end value. lo = null: no lower end (SUV 0).
  function codeText(code, lo, hi) {
    var step = (hi - (lo || 0)) / 255, nd = Math.max(0, Math.min(2, Math.ceil(-Math.log10(step))));
    if (code >= 255) { return "\u2265 " + hi.toFixed(nd); }
    if (code <= 0 && lo !== null) { return "\u2264 " + lo.toFixed(nd); }
    return ((lo || 0) + code * step).toFixed(nd);
  }

  // ------------------------------------------------------------------ state
  var state = {
    pos: clampPos([(S[0] - 1) / 2, (S[1] - 1) / 2, (S[2] - 1) / 2]),
    show: { liver: true, lesions: true, segments: false, pet: !!pet, crosshair: true },
    opacity: { liver: 0.25, lesions: 0.45, segments: 0.3, pet: 0.5 },
    win: IMG.presets[0], suv: { lo: 0, hi: pet ? Math.min(pet.max, 10) : 10 }
  };
  var COL = { liver: [0, 200, 0], lesions: [255, 40, 40], pet: null };
  var SEGCOL = [[0, 0, 0], [31, 119, 180], [255, 127, 14], [44, 160, 44], [148, 103, 189], [140, 86, 75],
    [227, 119, 194], [188, 189, 34], [23, 190, 207]];

  function hot(t) {  // black-red-yellow-white
    t = Math.max(0, Math.min(1, t));
    return [Math.min(255, 765 * t), Math.max(0, Math.min(255, 765 * t - 255)), Math.max(0, Math.min(255, 765 * t - 510))];
  }

  // ------------------------------------------------------------------ views
  var names = ["axial", "coronal", "sagittal"];
  var views = {};
  names.forEach(function (name) {
    var V = D.views[name], root = document.getElementById("view-" + name);
    if (!root) { return; }
    var cv = root.querySelector("canvas"), W = S[V.col], H = S[V.row];
    cv.width = W; cv.height = H;
    var wmm = W * D.spacing[V.col], hmm = H * D.spacing[V.row], big = Math.max(wmm, hmm);
    // CSS px per mm: 380 px views, enlarged (up to 640 px) so no voxel is drawn smaller than a pixel
    // (the dashed and dotted contours stay visible)
    var sc = Math.max(380 / big, Math.min(Math.max(1 / D.spacing[V.col], 1 / D.spacing[V.row]), 640 / big));
    cv.style.width = (wmm * sc).toFixed(1) + "px";
    cv.style.height = (hmm * sc).toFixed(1) + "px";
    var wrap = root.querySelector(".vwrap");
    wrap.style.width = cv.style.width; wrap.style.height = cv.style.height;
    ["left", "right", "top", "bottom"].forEach(function (e) { root.querySelector(".o-" + e).textContent = V.labels[e]; });
    // scale bar: a round length near a quarter of the width
    var target = wmm / 4, nice = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500], len = nice[0];
    nice.forEach(function (n) { if (n <= target) { len = n; } });
    var bar = root.querySelector(".scalebar");
    bar.style.width = (len * sc).toFixed(1) + "px";
    bar.querySelector("span").textContent = len + " mm";
    bar.setAttribute("data-mm", len);
    var slider = root.querySelector("input[type=range]");
    slider.min = 0; slider.max = S[V.normal] - 1;
    views[name] = { V: V, root: root, cv: cv, ctx: cv.getContext("2d"), W: W, H: H, slider: slider,
      idx: root.querySelector(".slice-index"), hl: root.querySelector(".ch-h"), vl: root.querySelector(".ch-v"),
      sc: sc };
  });

  function pixelToIndex(v, x, y) {  // canvas pixel -> full-grid voxel index for view v
    var q = state.pos.slice(), V = v.V;
    q[V.col] = V.flip_col ? v.W - 1 - x : x;
    q[V.row] = V.flip_row ? v.H - 1 - y : y;
    return q;
  }
  function indexToPixel(v, q) {
    var V = v.V;
    return [V.flip_col ? v.W - 1 - q[V.col] : q[V.col], V.flip_row ? v.H - 1 - q[V.row] : q[V.row]];
  }

  function render(v) {
    var W = v.W, H = v.H, V = v.V, n = W * H, q = state.pos.slice();
    var lo = state.win.lo, hi = state.win.hi, span = Math.max(hi - lo, 1e-9);
    var lut = new Uint8Array(256);
    for (var e = 0; e < 256; e++) {
      var val = IMG.lo + e * (IMG.hi - IMG.lo) / 255;
      lut[e] = Math.max(0, Math.min(255, Math.round((val - lo) / span * 255)));
    }
    var liv = new Uint8Array(n), les = new Uint16Array(n), seg = new Uint8Array(n);
    var out = v.ctx.createImageData(W, H), px = out.data;
    var sh = state.show, op = state.opacity;
    for (var y = 0; y < H; y++) {
      q[V.row] = V.flip_row ? H - 1 - y : y;
      for (var x = 0; x < W; x++) {
        q[V.col] = V.flip_col ? W - 1 - x : x;
        var p = y * W + x;
        var ii = Math.min(IS[0] - 1, Math.floor(q[0] / IF[0])), jj = Math.min(IS[1] - 1, Math.floor(q[1] / IF[1]));
        var kk = Math.min(IS[2] - 1, Math.floor(q[2] / IF[2]));
        var g = lut[img[ii * IST[0] + jj * IST[1] + kk * IST[2]]];
        var r = g, gg = g, b = g;
        if (pet && sh.pet) {
          var pi = Math.min(pet.s[0] - 1, Math.floor(q[0] / pet.f[0])), pj = Math.min(pet.s[1] - 1, Math.floor(q[1] / pet.f[1]));
          var pk = Math.min(pet.s[2] - 1, Math.floor(q[2] / pet.f[2]));
          var suv = pet.d[(pi * pet.s[1] + pj) * pet.s[2] + pk] * pet.max / 255;
          var t = (suv - state.suv.lo) / Math.max(state.suv.hi - state.suv.lo, 1e-9);
          if (t > 0) {  // below the scale transparent, fading in over its lower part (no darkened background)
            var c = hot(t), a = op.pet * Math.min(1, 3 * t);
            r = r * (1 - a) + c[0] * a; gg = gg * (1 - a) + c[1] * a; b = b * (1 - a) + c[2] * a;
          }
        }
        liv[p] = sh.liver ? maskAt("liver", q) : 0;
        les[p] = sh.lesions ? maskAt("lesions", q) : 0;
        seg[p] = sh.segments ? maskAt("segments", q) : 0;
        if (seg[p]) {
          var sc2 = SEGCOL[seg[p] % 9], as = op.segments;
          r = r * (1 - as) + sc2[0] * as; gg = gg * (1 - as) + sc2[1] * as; b = b * (1 - as) + sc2[2] * as;
        }
        if (les[p]) {
          var al = op.lesions;
          r = r * (1 - al) + COL.lesions[0] * al; gg = gg * (1 - al) + COL.lesions[1] * al; b = b * (1 - al) + COL.lesions[2] * al;
        } else if (liv[p]) {
          var av = op.liver;
          r = r * (1 - av) + COL.liver[0] * av; gg = gg * (1 - av) + COL.liver[1] * av; b = b * (1 - av) + COL.liver[2] * av;
        }
        px[4 * p] = r; px[4 * p + 1] = gg; px[4 * p + 2] = b; px[4 * p + 3] = 255;
      }
    }
    // contours differ by line style: liver solid, lesions dashed, segments dotted
    function edge(m, p, x, y) {
      var v0 = m[p];
      return (x > 0 && m[p - 1] !== v0) || (x < W - 1 && m[p + 1] !== v0) || (y > 0 && m[p - W] !== v0) ||
        (y < H - 1 && m[p + W] !== v0);
    }
    for (var y2 = 0; y2 < H; y2++) {
      for (var x2 = 0; x2 < W; x2++) {
        var p2 = y2 * W + x2, col = null;
        if (les[p2] && edge(les, p2, x2, y2)) { if ((x2 + y2) % 6 < 3) { col = COL.lesions; } }
        else if (liv[p2] && !les[p2] && edge(liv, p2, x2, y2)) { col = COL.liver; }
        else if (seg[p2] && edge(seg, p2, x2, y2) && (x2 + y2) % 3 === 0) { col = [255, 255, 255]; }
        if (col) { px[4 * p2] = col[0]; px[4 * p2 + 1] = col[1]; px[4 * p2 + 2] = col[2]; }
      }
    }
    v.ctx.putImageData(out, 0, 0);
    var k = state.pos[V.normal];
    v.slider.value = k;
    v.slider.setAttribute("aria-valuetext", "slice " + (k + 1) + " of " + S[V.normal]);
    v.idx.textContent = String(k + 1);
    v.root.setAttribute("data-slice", String(k));
    var pix = indexToPixel(v, state.pos), cw = parseFloat(v.cv.style.width) / W, ch = parseFloat(v.cv.style.height) / H;
    v.hl.style.top = ((pix[1] + 0.5) * ch).toFixed(1) + "px";
    v.vl.style.left = ((pix[0] + 0.5) * cw).toFixed(1) + "px";
    v.hl.hidden = v.vl.hidden = !state.show.crosshair;
  }

  function describe(q) {
    var id = maskAt("lesions", q), parts = [];
    if (id) {
      var l = lesionById[id] || {};
      parts.push("lesion " + id + (l.label ? " (" + l.label + ")" : "") + (l.location ? ", " + l.location : "") +
        (l.segment ? ", segment " + l.segment : ""));
    } else if (maskAt("liver", q)) { parts.push("liver"); }
    else { parts.push("outside liver and lesions"); }
    var s = maskAt("segments", q);
    if (s && !id) { parts.push("segment " + s); }
    parts.push(codeText(imageCode(q), IMG.lo, IMG.hi) + " " + IMG.unit);
    var pc = petCode(q);
    if (pc !== null) { parts.push("SUV " + codeText(pc, null, pet.max)); }
    return parts.join("; ");
  }

  var posEl = document.getElementById("viewer-position"), hoverEl = document.getElementById("viewer-hover");
  function renderAll() {
    Object.keys(views).forEach(function (k) { render(views[k]); });
    var lps = indexToLps(state.pos);
    if (posEl) {
      posEl.textContent = "voxel [" + state.pos.join(", ") + "], LPS (" + lps.map(function (x) { return x.toFixed(1); }).join(", ") +
        ") mm: " + describe(state.pos);
      posEl.setAttribute("data-voxel", state.pos.join(","));
    }
  }
  function setPos(q) { state.pos = clampPos(q); renderAll(); }
  function step(v, d) { var q = state.pos.slice(); q[v.V.normal] += d; setPos(q); }

  function eventPixel(v, ev) {
    var r = v.cv.getBoundingClientRect();
    var x = Math.floor((ev.clientX - r.left) / r.width * v.W), y = Math.floor((ev.clientY - r.top) / r.height * v.H);
    return [Math.max(0, Math.min(v.W - 1, x)), Math.max(0, Math.min(v.H - 1, y))];
  }
  Object.keys(views).forEach(function (name) {
    var v = views[name];
    v.cv.addEventListener("wheel", function (ev) { ev.preventDefault(); step(v, ev.deltaY > 0 ? 1 : -1); }, { passive: false });
    v.cv.addEventListener("keydown", function (ev) {
      var big = ev.shiftKey ? 10 : 1, handled = true;
      if (ev.key === "ArrowUp" || ev.key === "PageUp") { step(v, big); }
      else if (ev.key === "ArrowDown" || ev.key === "PageDown") { step(v, -big); }
      else if (ev.key === "Home") { var q = state.pos.slice(); q[v.V.normal] = 0; setPos(q); }
      else if (ev.key === "End") { var q2 = state.pos.slice(); q2[v.V.normal] = S[v.V.normal] - 1; setPos(q2); }
      else if ("adws".indexOf(ev.key.toLowerCase()) >= 0 && !ev.ctrlKey && !ev.metaKey && !ev.altKey) {
        // move the crosshair in this view: a/d left/right, w/s up/down (as drawn), one pixel (Shift: 10)
        var px = indexToPixel(v, state.pos), key = ev.key.toLowerCase();
        px[0] += (key === "d" ? big : key === "a" ? -big : 0);
        px[1] += (key === "s" ? big : key === "w" ? -big : 0);
        px[0] = Math.max(0, Math.min(v.W - 1, px[0])); px[1] = Math.max(0, Math.min(v.H - 1, px[1]));
        setPos(pixelToIndex(v, px[0], px[1]));
      }
      else { handled = false; }
      if (handled) { ev.preventDefault(); }
    });
    v.slider.addEventListener("input", function () { var q = state.pos.slice(); q[v.V.normal] = +v.slider.value; setPos(q); });
    v.cv.addEventListener("click", function (ev) { var p = eventPixel(v, ev); setPos(pixelToIndex(v, p[0], p[1])); });
    v.cv.addEventListener("mousemove", function (ev) {
      var p = eventPixel(v, ev);
      if (hoverEl) { hoverEl.textContent = "Under the cursor: " + describe(pixelToIndex(v, p[0], p[1])); }
    });
  });

  // ------------------------------------------------------------------ controls
  function on(id, evt, fn) { var e = document.getElementById(id); if (e) { e.addEventListener(evt, fn); } return e; }
  ["liver", "lesions", "segments", "pet", "crosshair"].forEach(function (k) {
    var box = on("show-" + k, "change", function () { state.show[k] = box.checked; renderAll(); });
    if (box) { box.checked = state.show[k]; }
    var sl = on("opacity-" + k, "input", function () { state.opacity[k] = +sl.value; renderAll(); });
    if (sl) { sl.value = state.opacity[k]; }
  });
  var wW = document.getElementById("window-width"), wL = document.getElementById("window-level");
  function showWindow() {
    if (wW) { wW.value = +(state.win.hi - state.win.lo).toFixed(2); wL.value = +((state.win.hi + state.win.lo) / 2).toFixed(2); }
  }
  var wsel = on("window-preset", "change", function () { state.win = IMG.presets[+wsel.value]; showWindow(); renderAll(); });
  function customWindow() {  // free width / level (image units)
    var w = Math.max(+wW.value, 1e-6), l = +wL.value;
    if (isFinite(w) && isFinite(l)) { state.win = { name: "custom", lo: l - w / 2, hi: l + w / 2 }; renderAll(); }
  }
  on("window-width", "change", customWindow);
  on("window-level", "change", customWindow);
  showWindow();
  var ssel = on("suv-scale", "change", function () {
    var o = ssel.options[ssel.selectedIndex];
    state.suv = { lo: +o.getAttribute("data-lo"), hi: +o.getAttribute("data-hi") };
    renderAll(); drawMip();
  });
  if (ssel) { ssel.dispatchEvent(new Event("change")); }

  function gotoLesion(id) {
    var l = lesionById[id];
    if (!l) { return; }
    setPos(lpsToIndex(l.centroid_lps_mm));
    document.querySelectorAll("tr.lesion-row").forEach(function (tr) {
      tr.setAttribute("aria-selected", tr.getAttribute("data-lesion") === String(id) ? "true" : "false");
    });
  }
  document.querySelectorAll("tr.lesion-row").forEach(function (tr) {
    var id = +tr.getAttribute("data-lesion");
    tr.addEventListener("click", function () { gotoLesion(id); });
    tr.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); gotoLesion(id); }
    });
  });

  // ------------------------------------------------------------------ PET MIP
  var M = D.mip, mipLab = null, mipImg = null;
  function drawMip() {
    var cv = document.getElementById("mip-canvas");
    if (!M || !cv) { return; }
    if (!mipImg) {
      mipImg = b64bytes(M.data);
      mipLab = rle(M.lesions, M.width * M.height).data;
      cv.width = M.width; cv.height = M.height;
      var wmm = M.width * M.spacing_mm[0], hmm = M.height * M.spacing_mm[1], sc = 380 / Math.max(wmm, hmm);
      cv.style.width = (wmm * sc).toFixed(1) + "px"; cv.style.height = (hmm * sc).toFixed(1) + "px";
      cv.parentNode.style.width = cv.style.width; cv.parentNode.style.height = cv.style.height;
    }
    var W = M.width, H = M.height, ctx = cv.getContext("2d"), out = ctx.createImageData(W, H), px = out.data;
    var lo = 0, hi = Math.max(state.suv.hi, 1e-9);  // the projection shows all uptake: 0 to the scale's top
    for (var p = 0; p < W * H; p++) {
      var suv = mipImg[p] * M.encode_max / 255, g = 255 - Math.max(0, Math.min(255, (suv - lo) / (hi - lo) * 255));
      px[4 * p] = px[4 * p + 1] = px[4 * p + 2] = g; px[4 * p + 3] = 255;
    }
    for (var y = 0; y < H; y++) {
      for (var x = 0; x < W; x++) {
        var q = y * W + x, v0 = mipLab[q];
        if (!v0) { continue; }
        var e = (x === 0 || mipLab[q - 1] !== v0) || (x === W - 1 || mipLab[q + 1] !== v0) ||
          (y === 0 || mipLab[q - W] !== v0) || (y === H - 1 || mipLab[q + W] !== v0);
        if (e && (x + y) % 4 < 3) { px[4 * q] = 255; px[4 * q + 1] = 40; px[4 * q + 2] = 40; }
      }
    }
    ctx.putImageData(out, 0, 0);
  }

  // ------------------------------------------------------------------ start
  renderAll();
  drawMip();
  function fromHash() {  // report.html#lesion=3 opens at lesion 3
    var m = /(?:^#|&)lesion=(\d+)/.exec(location.hash);
    if (m) { gotoLesion(+m[1]); }
  }
  fromHash();
  window.addEventListener("hashchange", fromHash);
  var ready = document.getElementById("viewer-status");
  var tReady = performance.now();
  if (ready) {
    ready.textContent = "Viewer ready " + tReady.toFixed(0) + " ms after the page started loading (data decode and first render " +
      (tReady - tStart).toFixed(0) + " ms).";
  }
  document.documentElement.setAttribute("data-viewer-ready", "1");
  window.netlmViewer = {
    position: function () { return state.pos.slice(); },
    setPosition: setPos,
    gotoLesion: gotoLesion,
    lpsToIndex: lpsToIndex,
    state: state,
    renderAll: renderAll,
    readyMs: tReady,
    decodeAndRenderMs: tReady - tStart
  };
})();
