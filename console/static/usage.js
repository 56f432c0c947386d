// The Usage page's charts, drawn with uPlot (vendor/uplot, served by the app) from the figures the
// server wrote into the page's <script type="application/json" id="usage-data"> element, which
// is read as data and never run. Without this script the table below carries everything; the
// charts' section stays hidden. Nothing here inserts text as HTML.
"use strict";

(function () {
  var HEIGHT = 220;
  var BLUE = "#0b6bcb";
  var GREEN = "#2f7d32";
  var ORANGE = "#b35c00";
  var PURPLE = "#6a3d9a";
  // Numbers and words in the page's language: the server puts its locale and the charts'
  // words in the data (English when they are missing).
  var CHARTS = null;
  function charts(locale, words) {
    var say = function (key, english) { return (words && words[key]) || english; };
    var whole = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
    var compact = new Intl.NumberFormat(locale, { notation: "compact", maximumFractionDigits: 1 });
    var dollars = new Intl.NumberFormat(locale, {
      style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 4,
    });
    var cents = new Intl.NumberFormat(locale, {
      style: "currency", currency: "USD", minimumFractionDigits: 4, maximumFractionDigits: 4,
    });
    dayLabel = uPlot.fmtDate("{D} {MMM}", monthNames(locale));
    // Each chart: the figures it draws (their key in the data, label, colour), and how to say them.
    return {
      activity: {
        title: say("activity", "Messages, answers and handoffs per day"),
        series: [["messages", say("messages", "Messages"), BLUE], ["answers", say("answers", "Answers"), GREEN], ["handoffs", say("handoffs", "Handoffs"), ORANGE]],
        tick: whole, value: whole, steps: wholeSteps(),
      },
      tokens: {
        title: say("tokens", "Tokens per day"),
        series: [["prompt_tokens", say("prompt_tokens", "Prompt"), BLUE], ["output_tokens", say("output_tokens", "Output"), GREEN], ["tts_tokens", say("tts_tokens", "TTS"), ORANGE], ["embedding_tokens", say("embedding_tokens", "Indexing"), PURPLE]],
        tick: compact, value: whole, steps: wholeSteps(),
      },
      cost: {
        title: say("cost", "Estimated cost per day (USD)"),
        series: [["cost_usd", say("cost_usd", "Estimated cost"), BLUE]],
        tick: dollars, value: cents, steps: null,
      },
      day: say("day", "Day"),
      figures: say("figures", "the table below has the figures"),
    };
  }

  // uPlot's names of the months and days, in the page's language.
  function monthNames(locale) {
    var names = function (options, count, at) {
      var format = new Intl.DateTimeFormat(locale, Object.assign({ timeZone: "UTC" }, options));
      var list = [];
      for (var i = 0; i < count; i++) list.push(format.format(at(i)).replace(".", ""));
      return list;
    };
    var month = function (i) { return new Date(Date.UTC(2026, i, 15)); };
    var weekday = function (i) { return new Date(Date.UTC(2026, 1, 1 + i)); }; // a Sunday first
    return {
      MMMM: names({ month: "long" }, 12, month),
      MMM: names({ month: "short" }, 12, month),
      WWWW: names({ weekday: "long" }, 7, weekday),
      WWW: names({ weekday: "short" }, 7, weekday),
    };
  }

  // Counts never get a fractional tick: 1, 2, 5, 10, 20, 50, ...
  function wholeSteps() {
    var steps = [];
    for (var power = 1; power <= 1e12; power *= 10) steps.push(power, 2 * power, 5 * power);
    return steps;
  }

  // A day "2026-05-14" as uPlot's x value: seconds at its start, UTC.
  function dayStart(iso) {
    var parts = iso.split("-");
    return Date.UTC(Number(parts[0]), Number(parts[1]) - 1, Number(parts[2])) / 1000;
  }

  // The x axis's days as "3 Nov", never a month-first "11/3".
  var dayLabel = null;
  function dayTicks(plot, ticks) {
    dayLabel = dayLabel || uPlot.fmtDate("{D} {MMM}");
    return ticks.map(function (t) { return dayLabel(utcDay(t)); });
  }

  function utcDay(ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); }

  function say(format) {
    return function (plot, value) { return value == null ? "–" : format.format(value); };
  }

  function options(chart, width) {
    var axis = { stroke: "#5b6470", grid: { stroke: "#e6e9ed" }, ticks: { stroke: "#d8dde3" } };
    var y = Object.assign({}, axis, {
      size: 64,
      values: function (plot, ticks) { return ticks.map(function (t) { return chart.tick.format(t); }); },
    });
    if (chart.steps) y.incrs = chart.steps;
    return {
      width: width,
      height: HEIGHT,
      // The days are UTC days: drawn as such whatever the browser's time zone.
      tzDate: utcDay,
      scales: {
        x: { time: true },
        y: { range: function (plot, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } },
      },
      series: [{ label: CHARTS.day, value: "{YYYY}-{MM}-{DD}" }].concat(chart.series.map(function (s) {
        return { label: s[1], stroke: s[2], width: 2, points: { size: 5 }, value: say(chart.value) };
      })),
      axes: [Object.assign({}, axis, { space: 56, values: dayTicks }), y],
    };
  }

  function draw(box, data, chart) {
    var columns = [data.days.map(dayStart)].concat(chart.series.map(function (s) { return data[s[0]]; }));
    var plot = new uPlot(options(chart, box.clientWidth), columns, box);
    var canvas = box.querySelector("canvas");
    if (canvas) {
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", chart.title + ", " + data.business + " (" + CHARTS.figures + ")");
    }
    return plot;
  }

  function start() {
    var source = document.getElementById("usage-data");
    var section = document.getElementById("usage-charts");
    if (!source || !section || typeof uPlot === "undefined") return;
    var data = JSON.parse(source.textContent);
    CHARTS = charts(data.locale || document.documentElement.lang || "en", data.words);
    section.hidden = false;
    var drawn = [];
    section.querySelectorAll("[data-chart]").forEach(function (box) {
      var chart = CHARTS[box.getAttribute("data-chart")];
      if (chart) drawn.push({ box: box, plot: draw(box, data, chart) });
    });
    var pending = null;
    window.addEventListener("resize", function () {
      window.clearTimeout(pending);
      pending = window.setTimeout(function () {
        drawn.forEach(function (d) { d.plot.setSize({ width: d.box.clientWidth, height: HEIGHT }); });
      }, 100);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
