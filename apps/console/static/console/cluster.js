// Cluster: the members with their role, liveness and shards, the leader and its term, a map of every shard
// coloured by its owner (hand-offs and recent moves marked), recent cluster events and failovers, and a plain
// warning when no live worker owns the shards. It reads GET /api/v1/cluster/stats (leader, term),
// /cluster/members (liveness of every member, up/down/left), /cluster/shards (leases) and /events, and
// refreshes every 2 s in place until the page is left.
//
// The warning is the stats' status ("Down" or "Degraded") with their reasons, then the owners concerned, read
// from the members' liveness and the shards' owners.

import { get, query } from "./api.js";
import { h } from "./dom.js";

const REFRESH_MS = 2000;
const MEMBERS_SHOWN = 50; // newest first; stopped processes stay listed until they age out of this window
const EVENTS_SHOWN = 20; // rows, once consecutive events of one move are grouped
const EVENTS_READ = 200;
const FAILOVERS_SHOWN = 10;
const RECENT_MOVE_MS = 5 * 60 * 1000; // a shard moved within this is marked "recently moved"
// owner colours, each with white text at 4.5:1 or more; an owner keeps its colour while the page is open
const PALETTE = ["#1d5fbf", "#1b7a3a", "#8a5a00", "#7a4fb5", "#0f6f75", "#b3261e", "#5b6b00", "#a0306e", "#3f51b5", "#6d4c41"];

const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "—");

/** Shards whose owner is not a live worker: unassigned, or owned by a member that is down or left. */
export function orphaned(shards, statusOf) {
  return shards.filter((shard) => !shard.owner || statusOf.get(shard.owner) !== "up");
}

/** The plain words of the warning, "" when the cluster is Up: the status and reasons of GET /cluster/stats
 * (the API alone decides Up, Degraded and Down), then the owners of the shards without a live owner. */
export function warningText(stats, shards, members) {
  if (stats.status === "Up") return "";
  const statusOf = new Map(members.map((member) => [member.nodeId, member.status]));
  const lost = orphaned(shards, statusOf);
  const unassigned = lost.filter((shard) => !shard.owner).length;
  const deadOwners = [...new Set(lost.filter((shard) => shard.owner).map((shard) => shard.owner))];
  const where = [
    deadOwners.length ? `${lost.length - unassigned} owned by ${deadOwners.map((o) => `${o} (${statusOf.get(o) || "gone"})`).join(", ")}` : "",
    unassigned ? `${unassigned} unassigned` : "",
  ].filter(Boolean).join("; ");
  const effect = stats.status === "Down"
    ? "No execution moves on until a live worker owns the shards."
    : "Executions on shards without a live owner wait until the leader moves them.";
  return `Cluster ${stats.status}: ${stats.reasons.join("; ")}. ${effect}${where ? ` Shards: ${where}.` : ""}`;
}

// a failover or rebalance writes one event per shard or execution: consecutive ones of the same move are one row
const GROUPED = { shard_rebalance: ["from_node", "to_node"], workflow_failover: ["failed_node", "new_node"] };

/** Consecutive events of one move (same type, from, to and reason) as one group, newest first. */
export function grouped(list) {
  const groups = [];
  for (const event of list) {
    const fields = GROUPED[event.event_type];
    const key = fields ? [event.event_type, event[fields[0]], event[fields[1]], event.reason].join("|") : null;
    const last = groups.at(-1);
    if (key && last && last.key === key) last.events.push(event);
    else groups.push({ key, events: [event] });
  }
  return groups;
}

export async function clusterPage(main) {
  const colours = new Map(); // owner -> colour, stable while the page is open
  const colourOf = (owner) => {
    if (!colours.has(owner)) colours.set(owner, PALETTE[colours.size % PALETTE.length]);
    return colours.get(owner);
  };
  const warning = h("p", { class: "cluster-warning", role: "alert" });
  const problem = h("p", { class: "alert", role: "alert" }); // the API could not be read
  const summary = h("div", { class: "cluster-summary", "data-testid": "cluster-summary" });
  const members = h("div", { "data-testid": "members" });
  const map = h("div", { class: "shard-area" });
  const failovers = h("div", { "data-testid": "failovers" });
  const events = h("div", { "data-testid": "events" });
  const updated = h("p", { class: "live", "aria-live": "off" });
  let timer = null;
  let stopped = false;

  async function read() {
    const [stats, memberList, shardList, recent, lost] = await Promise.all([
      get("/api/v1/cluster/stats"),
      get(`/api/v1/cluster/members${query({ limit: String(MEMBERS_SHOWN) })}`),
      get("/api/v1/cluster/shards"),
      get(`/api/v1/events${query({ limit: String(EVENTS_READ) })}`),
      get(`/api/v1/events${query({ event_type: "unreachable_member", limit: String(FAILOVERS_SHOWN) })}`),
    ]);
    return { stats, members: memberList.members, shards: shardList.shards, events: recent.events, lost: lost.events };
  }

  function drawSummary({ stats, members: list, shards }) {
    const up = list.filter((member) => member.status === "up");
    const owned = shards.filter((shard) => shard.owner).length;
    summary.replaceChildren(
      h("dl", {},
        h("dt", {}, "Leader"),
        h("dd", { "data-testid": "leader" }, stats.leader ? `${stats.leader} (term ${stats.term})` : `none: no coordinator leads (${stats.status}); last term ${stats.term}`),
        h("dt", {}, "Members up"),
        h("dd", {}, `${up.length} (${up.filter((m) => m.role === "worker").length} workers)`),
        h("dt", {}, "Shards"),
        h("dd", {}, `${shards.length}, ${owned} with an owner`),
        h("dt", {}, "Active executions"),
        h("dd", {}, String(stats.sharding.totalEntities))));
  }

  function drawMembers({ stats, members: list }) {
    const rows = list.map((member) =>
      h("tr", { "data-node-id": member.nodeId, "data-status": member.status },
        h("td", {}, member.nodeId, member.nodeId === stats.leader ? h("strong", { class: "leader-mark" }, ` leader, term ${stats.term}`) : null),
        h("td", {}, member.role),
        h("td", { class: "member-status" }, h("span", { class: `status member-${member.status}` }, member.status)),
        h("td", { class: "member-shards" }, String(member.shards)),
        h("td", {}, `${member.host} (pid ${member.pid})`),
        h("td", {}, time(member.startedAt)),
        h("td", {}, time(member.lastSeen))));
    members.replaceChildren(rows.length
      ? h("table", { class: "list members" },
        h("caption", { class: "muted" }, `The ${MEMBERS_SHOWN} newest member processes; "down": its liveness expired, "left": it exited cleanly.`),
        h("thead", {}, h("tr", {}, ["Member", "Role", "Liveness", "Shards", "Host", "Started", "Last seen"].map((name) => h("th", { scope: "col" }, name)))),
        h("tbody", {}, rows))
      : h("p", {}, "No member has registered yet."));
  }

  function describeShard(shard, statusOf, now) {
    const parts = [`Shard ${shard.shardId}`];
    if (!shard.owner) parts.push("unassigned");
    else parts.push(`owner ${shard.owner} (${statusOf.get(shard.owner) || "gone"})`);
    parts.push(`state ${shard.state}`);
    if (shard.handoffTo) parts.push(`handing off to ${shard.handoffTo}`);
    const moved = shard.movedAt && shard.previousOwner && now - new Date(shard.movedAt).getTime() < RECENT_MOVE_MS;
    if (moved) parts.push(`moved from ${shard.previousOwner} at ${time(shard.movedAt)}${shard.movedReason ? ` (${shard.movedReason})` : ""}`);
    if (shard.entityCount) parts.push(`${shard.entityCount} active executions`);
    return { text: parts.join(", "), moved };
  }

  function drawMap({ shards, members: list }) {
    const statusOf = new Map(list.map((member) => [member.nodeId, member.status]));
    const now = Date.now();
    const counts = new Map();
    const cells = shards.map((shard) => {
      const { text, moved } = describeShard(shard, statusOf, now);
      const handoff = shard.state === "handoff" || shard.state === "released";
      const live = shard.owner && statusOf.get(shard.owner) === "up";
      if (shard.owner) counts.set(shard.owner, (counts.get(shard.owner) || 0) + 1);
      const classes = ["shard", shard.owner ? "" : "unassigned", shard.owner && !live ? "dead-owner" : "", handoff ? "handoff" : "", moved ? "moved" : ""];
      return h("li", {
        class: classes.filter(Boolean).join(" "),
        style: shard.owner ? `--owner: ${colourOf(shard.owner)}` : null,
        title: text, "aria-label": text,
        "data-shard-id": shard.shardId, "data-owner": shard.owner || "", "data-state": shard.state, "data-moved": moved ? "true" : null,
      }, String(shard.shardId), handoff ? h("span", { class: "mark", "aria-hidden": "true" }, "⇄") : moved ? h("span", { class: "mark", "aria-hidden": "true" }, "↻") : null,
      shard.owner && !live ? h("span", { class: "mark", "aria-hidden": "true" }, "✕") : null);
    });
    const legend = [...counts.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([owner, count]) =>
      h("li", { "data-owner": owner },
        h("span", { class: "swatch", style: `--owner: ${colourOf(owner)}`, "aria-hidden": "true" }),
        `${owner}: ${count} shards, ${statusOf.get(owner) || "gone"}`));
    const unassigned = shards.filter((shard) => !shard.owner).length;
    if (unassigned) legend.push(h("li", {}, h("span", { class: "swatch unassigned", "aria-hidden": "true" }), `unassigned: ${unassigned} shards`));
    const moves = shards.filter((shard) => describeShard(shard, statusOf, now).moved);
    map.replaceChildren(...[
      h("ol", { class: "shard-map", "aria-label": `Shard map: ${shards.length} shards`, "data-testid": "shard-map" }, cells),
      h("ul", { class: "shard-legend", "aria-label": "Owners" }, legend,
        h("li", { class: "muted" }, "✕ owner not up · ⇄ hand-off in progress · ↻ moved in the last 5 minutes (hover a shard for details)")),
      moves.length
        ? h("p", { class: "recent-moves", "data-testid": "recent-moves" }, summarizeMoves(moves))
        : null,
    ].filter(Boolean)); // DOM's replaceChildren, unlike h(), would write a null as text
  }

  function summarizeMoves(moves) {
    const groups = new Map();
    for (const shard of moves) {
      const key = `${shard.previousOwner} → ${shard.owner || "unassigned"}${shard.movedReason ? ` (${shard.movedReason})` : ""}`;
      groups.set(key, [...(groups.get(key) || []), shard]);
    }
    return `Recently moved: ${[...groups.entries()].map(([key, shards]) =>
      `${shards.length} shards ${key}, last at ${time(shards.map((s) => s.movedAt).sort().at(-1))}`).join("; ")}.`;
  }

  function eventSummary(event) {
    const skip = new Set(["id", "timestamp", "event_type", "severity"]);
    return Object.entries(event).filter(([name]) => !skip.has(name))
      .map(([name, value]) => `${name}=${typeof value === "object" ? JSON.stringify(value) : value}`).join(", ");
  }

  function groupDetails(group) {
    const [newest] = group.events;
    if (group.events.length === 1) return eventSummary(newest);
    const [from, to] = GROUPED[newest.event_type];
    const shards = group.events.map((event) => event.shard_id).sort((a, b) => a - b);
    return `${group.events.length} from ${newest[from]} to ${newest[to]}${newest.reason ? ` (${newest.reason})` : ""}; shards ${shards.join(", ")}`;
  }

  function eventTable(list, empty) {
    if (!list.length) return h("p", { class: "muted" }, empty);
    const groups = grouped(list).slice(0, EVENTS_SHOWN);
    return h("table", { class: "list events" },
      h("thead", {}, h("tr", {}, ["Time", "Event", "Severity", "Details"].map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, groups.map((group) => {
        const [event] = group.events;
        const count = group.events.length;
        return h("tr", { "data-event-type": event.event_type },
          h("td", { class: "when" }, time(event.timestamp)),
          h("td", {}, count > 1 ? `${event.event_type} ×${count}` : event.event_type),
          h("td", {}, h("span", { class: `severity severity-${String(event.severity).toLowerCase()}` }, event.severity)),
          h("td", { class: "details" }, groupDetails(group)));
      })));
  }

  function drawFailovers({ lost, shards }) {
    const rows = lost.map((event) => {
      const node = event.unreachable_node;
      const moved = shards.filter((shard) => shard.previousOwner === node && shard.movedReason === "failover");
      const to = [...new Set(moved.map((shard) => shard.owner))].join(", ");
      return h("li", { "data-node-id": node },
        `${time(event.timestamp)}: ${node} stopped answering (noticed by ${event.detected_by || "the leader"})`,
        moved.length ? `; its ${moved.length} shards failed over to ${to}` : "");
    });
    failovers.replaceChildren(rows.length ? h("ul", { class: "failovers" }, rows) : h("p", { class: "muted" }, "No member was lost recently."));
  }

  async function refresh() {
    try {
      const seen = await read();
      if (stopped) return;
      problem.textContent = "";
      warning.textContent = warningText(seen.stats, seen.shards, seen.members);
      drawSummary(seen);
      drawMembers(seen);
      drawMap(seen);
      drawFailovers(seen);
      events.replaceChildren(eventTable(seen.events, "No cluster event yet."));
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}; refreshes every ${REFRESH_MS / 1000} s.`;
    } catch (error) {
      if (error.status === 401) throw error; // signed out: the router shows the sign-in form
      problem.textContent = `The cluster could not be read: ${error.message}`;
    }
  }

  async function loop() {
    await refresh().catch(() => {});
    if (!stopped) timer = setTimeout(loop, REFRESH_MS);
  }

  await refresh();
  main.replaceChildren(
    h("h1", {}, "Cluster"),
    warning, problem, updated,
    summary,
    h("h2", {}, "Members"), members,
    h("h2", {}, "Shards"), map,
    h("h2", {}, "Failovers"), failovers,
    h("h2", {}, "Recent cluster events"), events,
  );
  timer = setTimeout(loop, REFRESH_MS);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
