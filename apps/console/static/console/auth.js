// Signing in and out through the API's session routes, and the header that shows who is signed in.

import { login, logout } from "./api.js";
import { h } from "./dom.js";

export function signInPage(main, { onSignIn }) {
  const error = h("p", { class: "error", role: "alert", id: "sign-in-error" });
  const username = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  const password = h("input", {
    id: "password", name: "password", type: "password", autocomplete: "current-password", required: true,
  });
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "sign-in", "aria-describedby": "sign-in-error" },
    h("label", { for: "username" }, "Username"), username,
    h("label", { for: "password" }, "Password"), password,
    button, error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    error.textContent = "";
    try {
      await onSignIn(await login(username.value, password.value));
    } catch (failure) {
      error.textContent = failure.message; // the API's own words: "Unable to log in with ..."
      button.disabled = false;
      password.select();
    }
  });
  main.replaceChildren(h("h1", {}, "Sign in"), form);
  username.focus();
}

export function drawHeader(header, user, { onSignOut }) {
  const base = document.body.dataset.base || "/ui/";
  const brand = h("a", { class: "brand", href: `${base}workflows` }, "Workflow engine");
  if (!user) {
    header.replaceChildren(brand);
    return;
  }
  const signOut = h("button", { type: "button", class: "link" }, "Sign out");
  signOut.addEventListener("click", async () => onSignOut(await logout()));
  header.replaceChildren(
    brand,
    h(
      "nav",
      { "aria-label": "Pages" },
      h("a", { href: `${base}workflows` }, "Workflows"),
      h("a", { href: `${base}executions` }, "Executions"),
      h("a", { href: `${base}schedules` }, "Schedules"),
      h("a", { href: `${base}cluster` }, "Cluster"),
      h("a", { href: `${base}editor` }, "New workflow"),
    ),
    h(
      "div",
      { class: "who" },
      h("span", { class: "user", "data-testid": "user" }, user.username),
      h("span", { class: "roles", "data-testid": "roles" }, user.roles.length ? user.roles.join(", ") : "no role"),
      signOut,
    ),
  );
}
