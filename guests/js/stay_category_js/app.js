// Sluice transformer in JavaScript: adds `stay_category` to each expedia
// booking, with the same rules and output as the Rust stay-category guest
// (guests/stay-rules), written as the worker's process() hook.

import { Reject, transformer } from '../sluice_guest.js';

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const DATE = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/;

const isLeap = (year) => (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;

// Howard Hinnant's days_from_civil, as in stay-rules.
function daysFromCivil(year, month, day) {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = (month + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** Days since 1970-01-01 of a strict YYYY-MM-DD string, else null. */
export function parseDate(text) {
  if (typeof text !== 'string' || !DATE.test(text)) return null;
  const year = Number(text.slice(0, 4));
  const month = Number(text.slice(5, 7));
  const day = Number(text.slice(8, 10));
  if (month < 1 || month > 12) return null;
  const monthDays = month === 2 && isLeap(year) ? 29 : MONTH_DAYS[month - 1];
  if (day < 1 || day > monthDays) return null;
  return daysFromCivil(year, month, day);
}

export function category(checkIn, checkOut) {
  const start = parseDate(checkIn);
  const end = parseDate(checkOut);
  if (start === null || end === null) return 'Erroneous data';
  const days = end - start;
  if (days <= 0) return 'Erroneous data';
  if (days <= 4) return 'Short stay';
  if (days <= 10) return 'Standard stay';
  if (days <= 14) return 'Standard extended stay';
  return 'Long stay';
}

function process(message) {
  if (message === null || typeof message !== 'object' || Array.isArray(message)) {
    throw new Reject('value is JSON but not an object');
  }
  message.stay_category = category(message.srch_ci, message.srch_co);
  return message;
}

export const transform = transformer(process);
