// The console's entry point: it asks who is signed in, draws the header, and routes each path under /ui/ to
// a page module. Navigation uses history.pushState, so moving between pages never reloads the document.
// A page is `async function (main, route) -> cleanup?`; the cleanup (closing a live stream) runs on leave.

import { ApiError, session } from "./api.js";
import { signInPage, drawHeader } from "./auth.js";
import { workflowsPage } from "./workflows.js";
import { executionsPage } from "./executions.js";
import { executionPage } from "./execution.js";
import { workflowPage } from "./workflow.js";
import { schedulesPage } from "./schedules.js";
import { clusterPage } from "./cluster.js";
import { editorPage } from "./editor.js";
import { h } from "./dom.js";

const BASE = document.body.dataset.base || "/ui/"; // "/ui/", from the URL name in the shell template

// [pattern on the path after BASE, page]; the first match wins
const ROUTES = [
  [/^workflows$/, workflowsPage],
  [/^workflows\/([^/]+)$/, workflowPage],
  [/^editor$/, editorPage], // a new workflow
  [/^editor\/([^/]+)$/, editorPage], // an existing one
  [/^executions$/, executionsPage],
  [/^executions\/([^/]+)$/, executionPage],
  [/^schedules$/, schedulesPage],
  [/^cluster$/, clusterPage],
];

const state = { user: null, cleanup: null };

export function navigate(href, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", href);
  else history.pushState(null, "", href);
  return render();
}

async function render() {
  if (state.cleanup) state.cleanup();
  state.cleanup = null;
  const main = document.getElementById("main");
  drawHeader(document.getElementById("header"), state.user, { onSignOut: signedOut });
  if (!state.user) {
    signInPage(main, { onSignIn: signedIn });
    return;
  }
  const rest = decodeURI(location.pathname.slice(BASE.length)).replace(/\/$/, "");
  if (rest === "") return navigate(`${BASE}workflows`, { replace: true });
  const route = ROUTES.map(([pattern, page]) => [rest.match(pattern), page]).find(([match]) => match);
  main.replaceChildren();
  if (!route) {
    main.append(h("h1", {}, "Not found"), h("p", {}, `Nothing in the console at ${location.pathname}.`));
    return;
  }
  const [match, page] = route;
  try {
    state.cleanup =
      (await page(main, { params: match.slice(1), search: new URLSearchParams(location.search), navigate, base: BASE, user: state.user })) ||
      null;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return signedOut();
    main.replaceChildren(h("h1", {}, "Something went wrong"), h("p", { role: "alert" }, error.message));
  }
  const heading = main.querySelector("h1");
  if (heading) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true }); // a screen reader announces the new page
  }
}

function signedIn(user) {
  state.user = user;
  return render();
}

function signedOut() {
  state.user = null;
  return render();
}

// links inside the console navigate in place; modified clicks (new tab, ...) keep the browser's behaviour
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href]");
  if (!link || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey || link.target) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith(BASE)) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener("popstate", () => render());

async function boot() {
  const who = await session();
  state.user = who.authenticated ? who : null;
  await render();
}

boot().catch((error) => {
  document.getElementById("main").replaceChildren(h("p", { role: "alert" }, `The console could not start: ${error.message}`));
});
