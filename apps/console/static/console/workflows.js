// Workflows: one page of the workflows at a time (the API filters and pages: ?q= searches id, name and
// description, ?tag= keeps a tag, ?recent=5 adds each one's last five executions, X-Total-Count says how many
// match). The search and tag live in the URL, so a filtered page can be shared or reloaded; typing searches
// after a short pause, and only the table is redrawn, so the search box keeps its focus.

import { getWithTotal, query } from "./api.js";
import { h, when } from "./dom.js";

const PAGE = 25; // rows per page unless the URL says ?limit= (1 to 1000, as the API allows)
const RECENT = 5; // last runs shown per workflow
const TYPING_MS = 250;
// a sign for each status, so that the marks differ in shape and not only in colour
const SIGNS = { completed: "✓", failed: "✗", cancelled: "⊘", running: "▶", paused: "❚❚", queued: "○", pending: "○" };

function pageSize(search) {
  const asked = Number(search.get("limit"));
  return Number.isInteger(asked) && asked >= 1 && asked <= 1000 ? asked : PAGE;
}

/** The last runs as small marks, newest first: each a link to its execution, its status in text too. */
export function runMarks(recent, base) {
  if (!recent.length) return h("span", { class: "muted" }, "no runs yet");
  return h("ol", { class: "run-marks", "aria-label": "Last runs, newest first" },
    recent.map((run) => {
      const said = `${run.status}, ${run.startTime ? `started ${when(run.startTime)}` : `accepted ${when(run.createdAt)}`}`;
      return h("li", {},
        h("a", {
          class: `run-mark status-${run.status}`,
          "data-status": run.status,
          href: `${base}executions/${encodeURIComponent(run.executionId)}`,
          title: `${run.executionId}: ${said}`,
          "aria-label": `Execution ${run.executionId}: ${said}`,
        },
        h("span", { "aria-hidden": "true" }, SIGNS[run.status] || "•"),
        h("span", { class: "visually-hidden" }, run.status)));
    }));
}

function row(workflow, base, onTag) {
  const tags = (Array.isArray(workflow.tags) ? workflow.tags : []).map((tag) =>
    h("button", { type: "button", class: "tag", title: `Show only "${tag}"`, onclick: () => onTag(tag) }, String(tag)),
  );
  return h(
    "tr",
    { "data-workflow-id": workflow.id },
    h("td", {}, h("a", { href: `${base}workflows/${encodeURIComponent(workflow.id)}` }, workflow.id)),
    h("td", {}, typeof workflow.name === "string" ? workflow.name : ""),
    h("td", {}, tags),
    h("td", {}, workflow.valid ? "valid" : h("span", { class: "status status-failed" }, "draft")),
    h("td", {}, String(Array.isArray(workflow.nodes) ? workflow.nodes.length : 0)),
    h("td", {}, runMarks(workflow.recentExecutions || [], base)),
  );
}

export async function workflowsPage(main, { search, base }) {
  const limit = pageSize(search);
  const filters = { q: search.get("q") || "", tag: search.get("tag") || "" };
  let offset = Math.max(0, Number.parseInt(search.get("offset"), 10) || 0);
  const box = h("input", { id: "workflow-search", type: "search", value: filters.q, autocomplete: "off",
    placeholder: "id, name or description" });
  const tagNote = h("p", { class: "filter-note" });
  const body = h("tbody");
  const count = h("p", { "aria-live": "polite", "data-testid": "workflow-count" });
  const paging = h("nav", { class: "paging", "aria-label": "Pages of workflows" });
  const alert = h("p", { class: "alert", role: "alert" });
  let asked = 0; // the latest request: an older answer arriving late is dropped

  const here = (at) => `${base}workflows${query({ ...filters, limit: limit === PAGE ? "" : String(limit), offset: at ? String(at) : "" })}`;

  async function load() {
    const mine = ++asked;
    const params = query({ ...filters, recent: String(RECENT), limit: String(limit), offset: String(offset) });
    let page;
    try {
      page = await getWithTotal(`/api/v1/workflows${params}`);
    } catch (error) {
      if (mine === asked) alert.textContent = error.message;
      return;
    }
    if (mine !== asked) return;
    alert.textContent = "";
    draw(page);
  }

  function draw({ items, total }) {
    body.replaceChildren(...items.map((workflow) => row(workflow, base, setTag)));
    count.textContent = items.length
      ? `Workflows ${offset + 1}–${offset + items.length} of ${total}`
      : total ? `No workflows on this page (${total} match).` : "No workflows match.";
    tagNote.replaceChildren(
      ...(filters.tag ? [`Tag: ${filters.tag} `, h("button", { type: "button", class: "link", onclick: () => setTag("") }, "Show all tags")] : []),
    );
    const links = [];
    if (offset > 0) links.push(h("a", { href: here(Math.max(0, offset - limit)), rel: "prev" }, "Previous page"));
    if (offset + items.length < total) links.push(h("a", { href: here(offset + limit), rel: "next" }, "Next page"));
    paging.replaceChildren(...links);
  }

  // a new search or tag starts at the first page, in place (the URL follows without a new history entry)
  function refilter() {
    offset = 0;
    history.replaceState(null, "", here(0));
    return load();
  }
  function setTag(value) {
    filters.tag = value;
    return refilter();
  }
  let typing = null;
  box.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => { filters.q = box.value.trim(); refilter(); }, TYPING_MS);
  });
  const form = h("form", { class: "filters", role: "search", onsubmit: (event) => {
    event.preventDefault();
    clearTimeout(typing);
    filters.q = box.value.trim();
    refilter();
  } }, h("label", { for: "workflow-search" }, "Search"), box);

  main.replaceChildren(
    h("h1", {}, "Workflows"),
    form,
    tagNote,
    count,
    alert,
    h(
      "table",
      { class: "list workflows" },
      h("thead", {}, h("tr", {}, ["Id", "Name", "Tags", "State", "Nodes", "Last runs"].map((name) => h("th", { scope: "col" }, name)))),
      body,
    ),
    paging,
  );
  await load();
  return () => clearTimeout(typing);
}
