/**
 * HTTP-date (RFC 9110 5.6.7) in its three forms: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete
 * RFC 850 form (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`), all in UTC.
 * `Date.parse` is not used: it reads asctime (which has no zone) in the machine's local time, guesses RFC 850's
 * two-digit years its own way and accepts many strings that are no HTTP-date at all.
 */
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAY = '(?:mon|tue|wed|thu|fri|sat|sun)';
const LONG_DAY = '(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)';
const MONTH = '(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)';
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';

const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`, 'i');
const RFC850_DATE = new RegExp(`^${LONG_DAY}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`, 'i');
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`, 'i');

/** Milliseconds since the epoch of an HTTP-date, or undefined when `value` is none. `now` places RFC 850's century. */
export function parseHttpDate(value: string, now: number): number | undefined {
  const text = value.trim();
  let match = IMF_FIXDATE.exec(text);
  if (match !== null) return utc(Number(match[3]), match[2]!, match[1]!, match[4]!, match[5]!, match[6]!);
  match = RFC850_DATE.exec(text);
  if (match !== null) {
    // RFC 9110 5.6.7: a two-digit year more than 50 years in the future is the most recent past year ending so
    const nowYear = new Date(now).getUTCFullYear();
    let year = Math.floor(nowYear / 100) * 100 + Number(match[3]);
    if (year > nowYear + 50) year -= 100;
    return utc(year, match[2]!, match[1]!, match[4]!, match[5]!, match[6]!);
  }
  match = ASCTIME_DATE.exec(text);
  if (match !== null) return utc(Number(match[6]), match[1]!, match[2]!, match[3]!, match[4]!, match[5]!);
  return undefined;
}

function utc(year: number, month: string, day: string, hour: string, minute: string, second: string): number | undefined {
  const m = MONTHS.indexOf(month.toLowerCase());
  const d = Number(day.trim());
  const [h, min, s] = [Number(hour), Number(minute), Number(second)];
  // a leap second (60) is allowed by the grammar; it is read as the next second
  if (d < 1 || d > 31 || h > 23 || min > 59 || s > 60) return undefined;
  // 31 Feb and the like roll into the next month: no such date
  if (new Date(Date.UTC(year, m, d)).getUTCDate() !== d) return undefined;
  return Date.UTC(year, m, d, h, min, s);
}
