// The correction viewer: reads the JSON blob the page embeds, filters it, and shows one page of
// items at a time (so a run with 50,000 records never puts 50,000 cards in the DOM). Record text is
// only ever set through textContent, never parsed as HTML.
(function () {
  "use strict";
  var blob = document.getElementById("viewer-data");
  if (!blob) return;
  var data = JSON.parse(blob.textContent);
  var F = {};
  data.fields.forEach(function (name, i) { F[name] = i; });
  var FILTERS = ["generator", "corrector", "level", "subject", "verdict", "reason", "check", "stage"];
  var PAGE = 20;
  var LONG = 800;  // characters of a text shown before it is folded
  var STEPS = 12;  // steps of a wrong path shown before the rest are folded
  var state = { page: 1 };
  var shown = [];

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // A long text folded: its start shown, the whole of it one click away.
  function long(tag, cls, text) {
    text = String(text);
    if (text.length <= LONG) return el(tag, cls, text);
    var box = el("details", "long");
    var head = el("summary");
    head.appendChild(el(tag, cls, text.slice(0, LONG / 2) + "\u2026"));
    head.appendChild(el("span", "more", "show all " + text.length + " characters"));
    box.appendChild(head);
    box.appendChild(el(tag, cls, text));
    return box;
  }

  function stepList(steps, bad, from) {
    var list = el("ol", "steps");
    if (from > 1) list.start = from;
    steps.forEach(function (text, i) {
      var n = from + i;
      var li = el("li", n === bad ? "bad" : null);
      li.appendChild(long("span", null, text));
      if (n === bad) li.title = "the step the corrector named";
      list.appendChild(li);
    });
    return list;
  }

  function readHash() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ""));
    FILTERS.forEach(function (name) {
      var select = document.getElementById("filter-" + name);
      if (select && params.has(name)) {
        var value = params.get(name);
        if (Array.prototype.some.call(select.options, function (o) { return o.value === value; })) select.value = value;
      }
    });
    var page = parseInt(params.get("page") || "1", 10);
    state.page = isNaN(page) || page < 1 ? 1 : page;
  }

  function writeHash() {
    var params = new URLSearchParams();
    FILTERS.forEach(function (name) {
      var select = document.getElementById("filter-" + name);
      if (select && select.value !== "*") params.set(name, select.value);
    });
    if (state.page > 1) params.set("page", state.page);
    var hash = params.toString();
    if (hash !== location.hash.replace(/^#/, "")) history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search);
  }

  function buildFilters() {
    var bar = document.getElementById("viewer-filters");
    FILTERS.forEach(function (name) {
      var counts = {};
      data.items.forEach(function (item) { var v = item[F[name]]; counts[v] = (counts[v] || 0) + 1; });
      var values = Object.keys(counts).sort();
      // a filter with one value filters nothing; generator and verdict still show what there is
      var always = name === "generator" || name === "verdict";
      if (!values.length || (values.length === 1 && (values[0] === "" || !always))) return;
      var label = el("label", null, name + " ");
      var select = el("select");
      select.id = "filter-" + name;
      var all = el("option", null, "all (" + data.items.length + ")");
      all.value = "*";
      select.appendChild(all);
      values.forEach(function (v) {
        var option = el("option", null, (v === "" ? "(none)" : v) + " (" + counts[v] + ")");
        option.value = v;
        select.appendChild(option);
      });
      select.addEventListener("change", function () { state.page = 1; update(); });
      label.appendChild(select);
      bar.appendChild(label);
    });
  }

  function filter() {
    var active = [];
    FILTERS.forEach(function (name) {
      var select = document.getElementById("filter-" + name);
      if (select && select.value !== "*") active.push([F[name], select.value]);
    });
    shown = data.items.filter(function (item) {
      return active.every(function (f) { return String(item[f[0]]) === f[1]; });
    });
  }

  function card(item) {
    var q = data.questions[item[F.q]], path = data.paths[item[F.p]];
    var box = el("article", "item verdict-" + item[F.verdict].replace(/\W+/g, "-"));
    var head = el("header");
    [item[F.generator], item[F.corrector] ? "corrected by " + item[F.corrector] : "", item[F.level], item[F.subject],
     item[F.stage] === "evolved" ? "evolved question" : ""].forEach(function (tag) {
      if (tag) head.appendChild(el("span", "tag", tag));
    });
    var verdict = el("span", "badge", item[F.verdict] + (item[F.reason] ? ": " + item[F.reason] : ""));
    head.appendChild(verdict);
    box.appendChild(head);
    box.appendChild(el("h4", null, "Question"));
    box.appendChild(el("p", "question", q[0]));
    box.appendChild(el("h4", null, "Wrong path" + (path[1] ? " (answer " + path[1] + ", gold " + q[1] + ")" : " (gold " + q[1] + ")")));
    var shownSteps = Math.max(STEPS, item[F.step] || 0);
    box.appendChild(stepList(path[0].slice(0, shownSteps), item[F.step], 1));
    if (path[0].length > shownSteps) {
      var rest = el("details", "long");
      rest.appendChild(el("summary", "more", "show " + (path[0].length - shownSteps) + " more steps"));
      rest.appendChild(stepList(path[0].slice(shownSteps), item[F.step], shownSteps + 1));
      box.appendChild(rest);
    }
    if (item[F.step] !== null && (item[F.step] < 1 || item[F.step] > path[0].length)) {
      box.appendChild(el("p", "note", "The corrector named step " + item[F.step] + "; the path has " + path[0].length + "."));
    }
    if (item[F.explanation]) {
      box.appendChild(el("h4", null, "Explanation (step " + item[F.step] + ")"));
      box.appendChild(long("p", "explanation", item[F.explanation]));
    }
    if (item[F.corrected]) {
      var heading = item[F.reason] === "unparseable" ? "Corrector reply (not in the correction format)" : "Corrected solution";
      box.appendChild(el("h4", null, heading + (item[F.corrected_answer] ? " (answer " + item[F.corrected_answer] + ", gold " + q[1] + ")" : "")));
      box.appendChild(long("pre", "corrected", item[F.corrected]));
    }
    if (item[F.check]) {
      box.appendChild(el("p", "check", "first-error check: " + item[F.check] + (item[F.check_rates] ? " (" + item[F.check_rates] + ")" : "")));
    }
    if (item[F.detail]) box.appendChild(el("p", "note", item[F.detail]));
    if (item[F.corrector]) box.appendChild(el("p", "meta", "corrector: " + item[F.corrector]));
    return box;
  }

  function update() {
    filter();
    var pages = Math.max(1, Math.ceil(shown.length / PAGE));
    if (state.page > pages) state.page = pages;
    var list = document.getElementById("viewer-items");
    list.replaceChildren();
    shown.slice((state.page - 1) * PAGE, state.page * PAGE).forEach(function (item) { list.appendChild(card(item)); });
    if (!shown.length) list.appendChild(el("p", "note", "No item matches these filters."));
    document.getElementById("viewer-count").textContent =
      shown.length + " of " + data.items.length + " items; page " + state.page + " of " + pages;
    document.getElementById("viewer-prev").disabled = state.page <= 1;
    document.getElementById("viewer-next").disabled = state.page >= pages;
    writeHash();
  }

  buildFilters();
  readHash();
  document.getElementById("viewer-prev").addEventListener("click", function () { state.page -= 1; update(); });
  document.getElementById("viewer-next").addEventListener("click", function () { state.page += 1; update(); });
  window.addEventListener("hashchange", function () { readHash(); update(); });
  update();
})();
