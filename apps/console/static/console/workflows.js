// Workflows: the latest save of each workflow, with a search box (id, name, description) and tags; a tag
// filters the list. Each row links to the workflow's executions.

import { get, query } from "./api.js";
import { h } from "./dom.js";

function matches(workflow, text, tag) {
  if (tag && !(workflow.tags || []).includes(tag)) return false;
  const haystack = `${workflow.id} ${workflow.name || ""} ${workflow.description || ""}`.toLowerCase();
  return haystack.includes(text.toLowerCase());
}

function row(workflow, base, onTag) {
  const tags = (workflow.tags || []).map((tag) =>
    h("button", { type: "button", class: "tag", title: `Show only "${tag}"`, onclick: () => onTag(tag) }, tag),
  );
  return h(
    "tr",
    { "data-workflow-id": workflow.id },
    h("td", {}, h("a", { href: `${base}executions${query({ workflowId: workflow.id })}` }, workflow.id)),
    h("td", {}, workflow.name || ""),
    h("td", {}, tags),
    h("td", {}, workflow.valid ? "valid" : h("span", { class: "status status-failed" }, "draft")),
    h("td", {}, String(workflow.nodes ? workflow.nodes.length : 0)),
  );
}

export async function workflowsPage(main, { search, navigate, base }) {
  const workflows = await get("/api/v1/workflows");
  let tag = search.get("tag") || "";
  const box = h("input", { id: "workflow-search", type: "search", value: search.get("q") || "" });
  const tagNote = h("p", { class: "filter-note" });
  const body = h("tbody");
  const count = h("p", { "aria-live": "polite" });

  function draw() {
    const shown = workflows.filter((workflow) => matches(workflow, box.value, tag));
    body.replaceChildren(...shown.map((workflow) => row(workflow, base, setTag)));
    count.textContent = `${shown.length} of ${workflows.length} workflows`;
    tagNote.replaceChildren(
      ...(tag ? [`Tag: ${tag} `, h("button", { type: "button", class: "link", onclick: () => setTag("") }, "Show all tags")] : []),
    );
  }
  function setTag(value) {
    tag = value;
    history.replaceState(null, "", `${base}workflows${query({ q: box.value, tag })}`);
    draw();
  }
  box.addEventListener("input", () => setTag(tag));

  main.replaceChildren(
    h("h1", {}, "Workflows"),
    h("div", { class: "filters" }, h("label", { for: "workflow-search" }, "Search"), box),
    tagNote,
    count,
    h(
      "table",
      { class: "list" },
      h("thead", {}, h("tr", {}, ["Id", "Name", "Tags", "State", "Nodes"].map((name) => h("th", { scope: "col" }, name)))),
      body,
    ),
  );
  draw();
}
