// Executions: the global list, newest first, with the API's filters (status, workflow, trigger, start time)
// and cursor pages ("Next page" follows the API's nextCursor). Every filter lives in the URL, so a page can be
// shared or reloaded; a time range is either two instants (ISO 8601 with the timezone, from the browser's
// local datetime inputs) or a preset relative to now ("last hour": a shared link means the hour before it is
// opened).

import { ApiError, get, query } from "./api.js";
import { h, statusBadge, when } from "./dom.js";

export const EXECUTION_STATUSES = ["queued", "pending", "running", "paused", "completed", "failed", "cancelled"];
export const TRIGGERS = ["api", "schedule", "backfill", "rerun"]; // listing.TRIGGERS of the API
// ?within= presets: label and length in milliseconds
const WITHIN = { "1h": ["last hour", 3600e3], "24h": ["last 24 hours", 86400e3], "7d": ["last 7 days", 7 * 86400e3] };
const PAGE = 50; // rows per page unless the URL says ?limit= (1 to 1000, as the API allows)
const FILTERS = ["status", "workflowId", "trigger", "within", "startedAfter", "startedBefore"];

/** "2026-05-01T12:00:00Z" -> "2026-05-01T14:00" in the browser's zone, for <input type="datetime-local">. */
function localInput(iso) {
  const moment = new Date(iso);
  if (!iso || Number.isNaN(moment.getTime())) return "";
  const local = new Date(moment.getTime() - moment.getTimezoneOffset() * 60e3);
  return local.toISOString().slice(0, 16);
}

/** The local time a datetime input holds, as ISO 8601 in UTC ("" for an empty or unreadable input). */
function isoOf(value) {
  const moment = value ? new Date(value) : null; // a datetime-local value is read in the browser's zone
  return moment && !Number.isNaN(moment.getTime()) ? moment.toISOString() : "";
}

/** The API's query: the URL's filters, with a ?within= preset turned into startedAfter. */
function apiFilters(filters) {
  const out = { status: filters.status, workflowId: filters.workflowId, trigger: filters.trigger };
  const preset = WITHIN[filters.within];
  out.startedAfter = preset ? new Date(Date.now() - preset[1]).toISOString() : filters.startedAfter;
  out.startedBefore = filters.startedBefore;
  return out;
}

function choice(id, label, values, selected, labelOf = (value) => value) {
  return [
    h("label", { for: id }, label),
    h("select", { id, name: id }, h("option", { value: "" }, "any"),
      values.map((value) => h("option", { value, selected: value === selected }, labelOf(value)))),
  ];
}

function filterForm(filters, apply) {
  const form = h(
    "form",
    { class: "filters execution-filters", role: "search", "aria-label": "Filter executions" },
    choice("status-filter", "Status", EXECUTION_STATUSES, filters.status),
    h("label", { for: "workflow-filter" }, "Workflow"),
    h("input", { id: "workflow-filter", name: "workflowId", value: filters.workflowId, size: 18, placeholder: "workflow id" }),
    choice("trigger-filter", "Trigger", TRIGGERS, filters.trigger),
    choice("within-filter", "Started within", Object.keys(WITHIN), filters.within, (key) => WITHIN[key][0]),
    h("label", { for: "after-filter" }, "Started after"),
    h("input", { id: "after-filter", type: "datetime-local", value: localInput(filters.startedAfter), disabled: !!filters.within }),
    h("label", { for: "before-filter" }, "Started before"),
    h("input", { id: "before-filter", type: "datetime-local", value: localInput(filters.startedBefore) }),
    h("button", { type: "submit" }, "Apply filters"),
  );
  const read = () => {
    const field = (id) => form.querySelector(`#${id}`).value;
    const within = field("within-filter");
    return {
      status: field("status-filter"),
      workflowId: field("workflow-filter").trim(),
      trigger: field("trigger-filter"),
      within,
      startedAfter: within ? "" : isoOf(field("after-filter")), // a preset replaces the "after" instant
      startedBefore: isoOf(field("before-filter")),
    };
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); apply(read()); });
  // a choice applies at once; typed fields (workflow, times) with "Apply filters" or Enter, so that both times
  // of a range can be set before the list is asked for
  form.addEventListener("change", (event) => { if (event.target.tagName === "SELECT") apply(read()); });
  return form;
}

function rowOf(execution, base) {
  return h(
    "tr",
    { "data-execution-id": execution.executionId },
    h("td", {}, h("a", { href: `${base}executions/${encodeURIComponent(execution.executionId)}` }, execution.executionId)),
    h("td", {}, execution.workflowId),
    h("td", {}, statusBadge(execution.status)),
    h("td", {}, execution.trigger || ""),
    h("td", {}, when(execution.startTime || execution.createdAt)),
    h("td", {}, when(execution.endTime)),
  );
}

export async function executionsPage(main, { search, navigate, base }) {
  const filters = Object.fromEntries(FILTERS.map((name) => [name, search.get(name) || ""]));
  const cursor = search.get("cursor") || "";
  const limit = search.get("limit") || "";
  const here = (more) => `${base}executions${query({ ...filters, limit, ...more })}`;
  let page = null;
  let refused = null;
  try {
    page = await get(`/api/v1/executions${query({ ...apiFilters(filters), cursor, limit: limit || String(PAGE) })}`);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 400) throw error;
    refused = error; // a hand-edited URL: say which filter the API refused, keep the form to fix it
  }

  const paging = h("nav", { class: "paging", "aria-label": "Pages of executions" });
  if (cursor) paging.append(h("a", { href: here({}) }, "First page"));
  if (page && page.nextCursor) paging.append(h("a", { href: here({ cursor: page.nextCursor }) }, "Next page"));
  const any = FILTERS.some((name) => filters[name]);

  let listing;
  if (refused) {
    const problems = Object.entries(refused.body?.details || {}).map(([field, list]) => `${field}: ${[].concat(list).join(" ")}`);
    listing = h("p", { role: "alert", class: "error-text" }, refused.message, problems.length ? ` (${problems.join("; ")})` : "");
  } else if (page.executions.length) {
    listing = h(
      "table",
      { class: "list" },
      h("thead", {}, h("tr", {}, ["Execution", "Workflow", "Status", "Trigger", "Started", "Ended"].map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, page.executions.map((execution) => rowOf(execution, base))),
    );
  } else listing = h("p", {}, "No executions match.");

  main.replaceChildren(
    h("h1", {}, filters.workflowId ? `Executions of ${filters.workflowId}` : "Executions"),
    filterForm(filters, (chosen) => {
      const href = `${base}executions${query({ ...chosen, limit })}`;
      if (href !== location.pathname + location.search) navigate(href); // Enter may fire change and submit
    }),
    h("p", { class: "filter-note" },
      filters.workflowId ? h("a", { href: `${base}executions${query({ ...filters, workflowId: "", limit })}` }, "All workflows") : null,
      filters.workflowId && any ? " · " : null,
      any ? h("a", { href: `${base}executions${query({ limit })}` }, "Clear filters") : null),
    listing,
    paging,
  );
}
