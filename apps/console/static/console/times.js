// Times as the console shows them, in the browser's locale and zone. The formatters are made once: calling
// toLocaleString() builds one per call, which a 500-node execution page (thousands of times) cannot afford.

const DATE_TIME = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "2-digit", second: "2-digit",
});
const TIME = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit", second: "2-digit" });

function moment(value) {
  if (value === null || value === undefined || value === "") return null;
  const date = new Date(value); // epoch milliseconds or an ISO 8601 string, as the API gives them
  return Number.isNaN(date.getTime()) ? null : date;
}

/** Date and time ("12/3/2026, 7:09:37 AM"), or "—" when there is none. */
export function dateTime(value) {
  const date = moment(value);
  return date ? DATE_TIME.format(date) : "—";
}

/** The time of day ("7:09:37 AM"). */
export function clock(value) {
  const date = moment(value);
  return date ? TIME.format(date) : "—";
}
