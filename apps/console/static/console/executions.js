// Executions: the global list, newest first, with a status filter and cursor pages ("Next page" follows the
// API's nextCursor; the filters live in the URL, so a page can be shared or reloaded).

import { get, query } from "./api.js";
import { h, statusBadge, when } from "./dom.js";

export const EXECUTION_STATUSES = ["queued", "pending", "running", "paused", "completed", "failed", "cancelled"];
const PAGE = 50; // rows per page unless the URL says ?limit= (1 to 1000, as the API allows)

export async function executionsPage(main, { search, navigate, base }) {
  const filters = { status: search.get("status") || "", workflowId: search.get("workflowId") || "" };
  const cursor = search.get("cursor") || "";
  const limit = search.get("limit") || "";
  const page = await get(`/api/v1/executions${query({ ...filters, cursor, limit: limit || String(PAGE) })}`);

  const status = h(
    "select",
    { id: "status-filter" },
    h("option", { value: "" }, "any"),
    EXECUTION_STATUSES.map((name) => h("option", { value: name, selected: name === filters.status }, name)),
  );
  status.addEventListener("change", () => navigate(`${base}executions${query({ ...filters, status: status.value })}`));

  const rows = page.executions.map((execution) =>
    h(
      "tr",
      { "data-execution-id": execution.executionId },
      h("td", {}, h("a", { href: `${base}executions/${encodeURIComponent(execution.executionId)}` }, execution.executionId)),
      h("td", {}, execution.workflowId),
      h("td", {}, statusBadge(execution.status)),
      h("td", {}, execution.trigger || ""),
      h("td", {}, when(execution.startTime || execution.createdAt)),
    ),
  );
  const paging = h("nav", { class: "paging", "aria-label": "Pages of executions" });
  if (cursor) paging.append(h("a", { href: `${base}executions${query({ ...filters, limit })}` }, "First page"));
  if (page.nextCursor) {
    paging.append(h("a", { href: `${base}executions${query({ ...filters, limit, cursor: page.nextCursor })}` }, "Next page"));
  }

  main.replaceChildren(
    h("h1", {}, filters.workflowId ? `Executions of ${filters.workflowId}` : "Executions"),
    h(
      "div",
      { class: "filters" },
      h("label", { for: "status-filter" }, "Status"),
      status,
      filters.workflowId ? h("a", { href: `${base}executions${query({ status: filters.status })}` }, "All workflows") : null,
    ),
    rows.length
      ? h(
          "table",
          { class: "list" },
          h("thead", {}, h("tr", {}, ["Execution", "Workflow", "Status", "Trigger", "Started"].map((name) => h("th", { scope: "col" }, name)))),
          h("tbody", {}, rows),
        )
      : h("p", {}, "No executions match."),
    paging,
  );
}
