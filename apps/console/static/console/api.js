// The REST API as the console uses it: the browser's session cookie authenticates, and every unsafe request
// carries the CSRF token of GET /api/v1/auth/session in X-CSRFToken (docs/api.md, "Authentication").

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `The API answered ${status}.`);
    this.status = status;
    this.body = body;
  }
}

let csrfToken = "";

async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken;
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body);

/** Who is signed in ({authenticated, username, roles}); keeps the CSRF token for later requests. */
export async function session() {
  const answer = await get("/api/v1/auth/session");
  csrfToken = answer.csrfToken;
  return answer;
}

export async function login(username, password) {
  const answer = await post("/api/v1/auth/login", { username, password });
  csrfToken = answer.csrfToken; // Django rotates the token at sign-in
  return answer;
}

export async function logout() {
  await post("/api/v1/auth/logout");
  return session(); // a fresh token for the next sign-in
}

/** A query string from an object, skipping empty values: query({status: "failed"}) -> "?status=failed". */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value) search.set(name, value);
  const text = search.toString();
  return text ? `?${text}` : "";
}
