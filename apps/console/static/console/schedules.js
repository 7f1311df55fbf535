// Schedules: every schedule with its next fire time (GET /api/v1/schedules), pause and resume (each confirmed),
// a preview of the next N fire times, and backfills with their progress. Changing a schedule is for admins
// (docs/api.md, "Roles"): other roles see the list and the preview only, and the API refuses the rest anyway.
//
// The API answers every schedule at once (it does not page), so the console pages the rows it shows (50 a
// page, ?page=). The rows refresh in place every few seconds (next fire times move on) without redrawing
// what has the focus.

import { get, post, query } from "./api.js";
import { confirmAction } from "./actions.js";
import { h } from "./dom.js";

const PAGE = 50;
const REFRESH_MS = 5000;
const BACKFILL_POLL_MS = 1000;
const PREVIEW_MAX = 1000; // PreviewQuery.count's bound in apps/schedules/api/serializers.py
const MAX_ACTIVE_MAX = 1000; // BackfillInput.maxActive's bound
const STATES = ["active", "paused", "stopped"];

/** "2026-03-01 09:30:00" in the schedule's own time zone (as the API's timezone names it). */
export function inZone(iso, timeZone) {
  if (!iso) return "—";
  try {
    return new Date(iso).toLocaleString("sv-SE", { timeZone });
  } catch {
    return new Date(iso).toLocaleString("sv-SE", { timeZone: "UTC" }); // an unknown zone: never a blank cell
  }
}

/** "in 5 min", "3 s ago": how far a time is from now. */
function relative(iso) {
  const seconds = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  const size = Math.abs(seconds);
  const text = size < 90 ? `${size} s` : size < 5400 ? `${Math.round(size / 60)} min`
    : size < 172800 ? `${Math.round(size / 3600)} h` : `${Math.round(size / 86400)} d`;
  return seconds >= 0 ? `in ${text}` : `${text} ago`;
}

/** What makes the schedule fire, in words. */
function cadence(schedule) {
  switch (schedule.scheduleType) {
    case "fixed_rate": return `every ${schedule.interval}`;
    case "fixed_delay": return `${schedule.interval} after each run`;
    case "cron": return `cron ${schedule.cronExpression}`;
    case "immediate": return "once";
    default: return schedule.scheduleType;
  }
}

const apiPath = (id) => `/api/v1/schedules/${encodeURIComponent(id)}`;

export async function schedulesPage(main, { search, navigate, base, user }) {
  const admin = (user.roles || []).includes("admin"); // workflows.manage_schedules: admins only
  const filters = { workflowId: search.get("workflowId") || "", state: search.get("state") || "" };
  const pageNumber = Math.max(1, Number.parseInt(search.get("page") || "1", 10) || 1);
  const alert = h("p", { class: "alert", role: "alert" });
  const done = h("p", { class: "done", role: "status" });
  const panel = h("section", { class: "schedule-panel", hidden: true, "aria-labelledby": "schedule-panel-title" });
  const tbody = h("tbody");
  const rows = new Map(); // schedule id -> {tr, cells, state}
  const timers = new Set();
  let stopped = false;

  const say = (text) => { alert.textContent = ""; done.textContent = text; };
  const fail = (error) => { done.textContent = ""; alert.textContent = error.message; };

  async function control(schedule, verb) {
    const label = schedule.name || schedule.id;
    const question = verb === "pause"
      ? `Pause schedule ${label} of ${schedule.workflowId}? It fires no more until resumed; its phase is kept.`
      : `Resume schedule ${label} of ${schedule.workflowId}? It fires again from its next time; times missed while paused do not fire.`;
    alert.textContent = "";
    if (!(await confirmAction(question, verb === "pause" ? "Pause schedule" : "Resume schedule"))) return;
    try {
      await post(`${apiPath(schedule.id)}/${verb}`);
      say(`Schedule ${label}: ${verb === "pause" ? "paused" : "resumed"}.`);
      await refresh();
    } catch (error) {
      fail(error);
    }
  }

  function actionButtons(schedule) {
    const buttons = [h("button", { type: "button", "data-action": "preview", onclick: () => openPanel(schedule) }, "Preview")];
    if (!admin) return buttons;
    if (schedule.state === "active") {
      buttons.unshift(h("button", { type: "button", "data-action": "pause", onclick: () => control(schedule, "pause") }, "Pause"));
    } else if (schedule.state === "paused") {
      buttons.unshift(h("button", { type: "button", "data-action": "resume", onclick: () => control(schedule, "resume") }, "Resume"));
    }
    if (schedule.scheduleType !== "immediate") {
      buttons.push(h("button", { type: "button", "data-action": "backfill", onclick: () => openPanel(schedule, true) }, "Backfill"));
    }
    return buttons;
  }

  function fillRow(row, schedule) {
    const { cells } = row;
    cells.cadence.textContent = cadence(schedule);
    cells.timezone.textContent = schedule.timezone;
    cells.state.replaceChildren(h("span", { class: `status schedule-${schedule.state}`, "data-state": schedule.state }, schedule.state));
    cells.next.replaceChildren(schedule.nextFireAt
      ? h("time", { datetime: schedule.nextFireAt, title: schedule.nextFireAt }, inZone(schedule.nextFireAt, schedule.timezone),
        h("span", { class: "muted" }, ` (${relative(schedule.nextFireAt)})`))
      : h("span", { class: "muted" }, schedule.state === "active" ? "—" : `none while ${schedule.state}`));
    cells.last.replaceChildren(schedule.lastFireAt
      ? h("time", { datetime: schedule.lastFireAt, title: schedule.lastFireAt }, inZone(schedule.lastFireAt, schedule.timezone))
      : h("span", { class: "muted" }, "never"));
    // the buttons depend only on the state: redrawn when it changes, so a focused button survives a refresh
    if (row.state !== schedule.state) cells.actions.replaceChildren(...actionButtons(schedule));
    row.state = schedule.state;
    row.schedule = schedule;
  }

  function newRow(schedule) {
    const cell = () => h("td");
    const cells = { cadence: cell(), timezone: cell(), state: cell(), next: cell(), last: cell(), actions: h("td", { class: "row-actions" }) };
    const tr = h("tr", { "data-schedule-id": schedule.id },
      h("td", {}, schedule.name ? [schedule.name, h("br"), h("small", { class: "muted" }, schedule.id)] : schedule.id),
      h("td", {}, h("a", { href: `${base}workflows/${encodeURIComponent(schedule.workflowId)}` }, schedule.workflowId)),
      cells.cadence, cells.timezone, cells.state, cells.next, cells.last, cells.actions);
    const row = { tr, cells, state: null, schedule };
    fillRow(row, schedule);
    return row;
  }

  function draw(shown) {
    const ids = shown.map((schedule) => schedule.id);
    if (ids.join() !== [...rows.keys()].join()) {
      rows.clear();
      for (const schedule of shown) rows.set(schedule.id, newRow(schedule));
      tbody.replaceChildren(...[...rows.values()].map((row) => row.tr));
    } else {
      for (const schedule of shown) fillRow(rows.get(schedule.id), schedule);
    }
  }

  const fetchAll = async () => (await get(`/api/v1/schedules${query(filters)}`)).schedules;
  const slice = (all) => all.slice((pageNumber - 1) * PAGE, pageNumber * PAGE);

  async function refresh() {
    try {
      draw(slice(await fetchAll()));
    } catch (error) {
      fail(error);
    }
  }

  function later(run, ms) {
    if (stopped) return;
    const timer = setTimeout(async () => { timers.delete(timer); await run(); }, ms);
    timers.add(timer);
  }

  async function tick() {
    await refresh();
    later(tick, REFRESH_MS);
  }

  // --- the panel of one schedule: preview, backfill -----------------------------------------------------

  function previewForm(schedule) {
    const count = h("input", { id: "preview-count", type: "number", min: 1, max: PREVIEW_MAX, value: 10, required: true });
    const list = h("ol", { class: "fire-times", "aria-label": "Next fire times" });
    const submit = async (event) => {
      event.preventDefault();
      alert.textContent = "";
      try {
        const answer = await get(`${apiPath(schedule.id)}/preview${query({ count: count.value })}`);
        list.replaceChildren(...answer.fireTimes.map((iso) =>
          h("li", {}, h("time", { datetime: iso, title: iso }, inZone(iso, answer.timezone)))));
        if (!answer.fireTimes.length) list.replaceChildren(h("li", { class: "muted" }, "It fires no more."));
      } catch (error) {
        fail(error);
      }
    };
    return h("form", { class: "preview", "aria-label": "Preview fire times", onsubmit: submit },
      h("h3", {}, `Next fire times (${schedule.timezone})`),
      h("div", { class: "fields" },
        h("label", { for: "preview-count" }, `How many (1 to ${PREVIEW_MAX})`), count,
        h("button", { type: "submit" }, "Preview")),
      list);
  }

  function backfillForm(schedule) {
    const start = h("input", { id: "backfill-start", type: "datetime-local", step: 1, required: true });
    const end = h("input", { id: "backfill-end", type: "datetime-local", step: 1, required: true });
    const maxActive = h("input", { id: "backfill-max-active", type: "number", min: 1, max: MAX_ACTIVE_MAX, value: 3, required: true });
    const progress = h("div", { class: "backfill-progress", role: "status", "aria-live": "polite" });
    const submit = async (event) => {
      event.preventDefault();
      alert.textContent = "";
      // datetime-local is the browser's local time; the API takes ISO 8601 with its offset
      const body = { start: new Date(start.value).toISOString(), end: new Date(end.value).toISOString(), maxActive: Number(maxActive.value) };
      const question = `Backfill ${schedule.name || schedule.id}: run its fire times from ${start.value.replace("T", " ")} to ${end.value.replace("T", " ")} (end excluded), at most ${body.maxActive} at once?`;
      if (!(await confirmAction(question, "Start backfill"))) return;
      try {
        const run = await post(`${apiPath(schedule.id)}/backfill`, body);
        showBackfill(progress, run);
        followBackfill(progress, run.id);
      } catch (error) {
        fail(error);
      }
    };
    return h("form", { class: "backfill", "aria-label": "Backfill", onsubmit: submit },
      h("h3", {}, "Backfill a past range"),
      h("p", { class: "muted" }, "Runs the schedule's fire times over [start, end) — times in this browser's zone — each once, with its logical time as input."),
      h("div", { class: "fields" },
        h("label", { for: "backfill-start" }, "Start"), start,
        h("label", { for: "backfill-end" }, "End"), end,
        h("label", { for: "backfill-max-active" }, "At most active at once"), maxActive,
        h("button", { type: "submit" }, "Start backfill")),
      progress);
  }

  function showBackfill(progress, run) {
    progress.dataset.state = run.state;
    progress.replaceChildren(
      h("p", {}, `Backfill ${run.id}: `, h("strong", { class: "backfill-state" }, run.state),
        ` — ${run.started} of ${run.total} started`, run.finishedAt ? `, finished ${new Date(run.finishedAt).toLocaleString()}` : ""),
      h("progress", { max: Math.max(run.total, 1), value: run.total ? run.started : 1, "aria-label": "Backfill progress" }),
      h("p", {}, h("a", { href: `${base}executions${query({ workflowId: panel.dataset.workflowId })}` }, "Its executions")));
  }

  function followBackfill(progress, id) {
    const poll = async () => {
      if (!progress.isConnected) return; // the panel moved to another schedule
      try {
        const run = await get(`/api/v1/backfills/${encodeURIComponent(id)}`);
        showBackfill(progress, run);
        if (run.state === "running") later(poll, BACKFILL_POLL_MS);
      } catch (error) {
        fail(error);
      }
    };
    later(poll, BACKFILL_POLL_MS);
  }

  function openPanel(schedule, toBackfill = false) {
    panel.hidden = false;
    panel.dataset.scheduleId = schedule.id;
    panel.dataset.workflowId = schedule.workflowId;
    const close = h("button", { type: "button", class: "link", onclick: () => { panel.hidden = true; panel.replaceChildren(); } }, "Close");
    const parts = [
      h("h2", { id: "schedule-panel-title", tabindex: -1 }, `Schedule ${schedule.name || schedule.id}`),
      h("p", { class: "muted" }, `${cadence(schedule)} · ${schedule.workflowId} · ${schedule.state} · `, close),
      previewForm(schedule),
    ];
    if (admin && schedule.scheduleType !== "immediate") parts.push(backfillForm(schedule));
    panel.replaceChildren(...parts);
    const target = toBackfill ? panel.querySelector("#backfill-start") : panel.querySelector("#preview-count");
    panel.scrollIntoView({ block: "nearest" });
    target.focus();
  }

  // --- the page -------------------------------------------------------------------------------------------

  const all = await fetchAll();
  const state = h("select", { id: "state-filter" }, h("option", { value: "" }, "any"),
    STATES.map((name) => h("option", { value: name, selected: name === filters.state }, name)));
  state.addEventListener("change", () => navigate(`${base}schedules${query({ ...filters, state: state.value })}`));
  const pages = Math.max(1, Math.ceil(all.length / PAGE));
  const paging = h("nav", { class: "paging", "aria-label": "Pages of schedules" });
  if (pageNumber > 1) paging.append(h("a", { href: `${base}schedules${query({ ...filters, page: String(pageNumber - 1) })}` }, "Previous page"));
  if (pageNumber < pages) paging.append(h("a", { href: `${base}schedules${query({ ...filters, page: String(pageNumber + 1) })}` }, "Next page"));
  if (pages > 1) paging.append(h("span", { class: "muted" }, `Page ${pageNumber} of ${pages} (${all.length} schedules)`));
  draw(slice(all));

  main.replaceChildren(...[
    h("h1", {}, filters.workflowId ? `Schedules of ${filters.workflowId}` : "Schedules"),
    h("div", { class: "filters" }, h("label", { for: "state-filter" }, "State"), state,
      filters.workflowId ? h("a", { href: `${base}schedules${query({ state: filters.state })}` }, "All workflows") : null),
    admin ? null : h("p", { class: "muted" }, `Your role (${(user.roles || []).join(", ") || "no role"}) may read schedules and preview them; pausing, resuming and backfills are for admins.`),
    alert, done,
    all.length
      ? h("table", { class: "list schedules" },
        h("thead", {}, h("tr", {}, ["Schedule", "Workflow", "Fires", "Time zone", "State", "Next fire", "Last fire", "Actions"]
          .map((name) => h("th", { scope: "col" }, name)))),
        tbody)
      : h("p", {}, "No schedules match."),
    paging,
    panel,
  ].filter(Boolean));
  later(tick, REFRESH_MS);
  return () => {
    stopped = true;
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
  };
}
