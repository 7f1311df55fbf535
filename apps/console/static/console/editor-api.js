// The editor's calls to the API ({status, body, etag}, from api.js's `request`): the ETag of every save goes
// back in If-Match on the next one, so that a save over someone else's is refused (412) instead of
// overwriting it (docs/api.md, "ETag and If-Match").

import { request } from "./api.js";

const call = (method, path, body, headers = {}) => request(method, path, { body, headers });

const workflowPath = (id) => `/api/v1/workflows/${encodeURIComponent(id)}`;

export const nodeTypes = () => call("GET", "/api/v1/workflows/node-types").then((answer) => answer.body);
export const loadWorkflow = (id) => call("GET", workflowPath(id));
export const createWorkflow = (definition) => call("POST", "/api/v1/workflows", definition);

/** PUT with If-Match `etag` (none: unconditional, e.g. "Save anyway" after a 412). */
export const saveWorkflow = (id, definition, etag) =>
  call("PUT", workflowPath(id), definition, etag ? { "If-Match": etag } : {});

export const runWorkflow = (id, input) =>
  call("POST", `${workflowPath(id)}/execute`, input === undefined ? {} : { input }).then((answer) => answer.body);
